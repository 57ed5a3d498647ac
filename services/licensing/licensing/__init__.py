"""Licensing: the sales master. Customers as sold, the catalogue, licenses and their
installation numbers, partners and their sales, product registration, support (SERVIS)."""
