"""Developer and operator tools that are no service's domain: the local runner, the mail
catcher, demo data."""
