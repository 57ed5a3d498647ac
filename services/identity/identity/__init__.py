"""Identity: who may enter a customer profile and what each person may do there.

Owns customer profiles (company, addresses, delivery method), users, memberships with rights,
pending registrations and tokens. Learns customers from licensing's events.
"""
