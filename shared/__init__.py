"""Customer Center's common package: what every service needs and nothing more.

config (settings from the environment), db (engine and unit of work), events (envelope and
catalogue), outbox + relay (publishing without loss), consumer (idempotent inbox), topology
(RabbitMQ names and declarations), web (the Flask app base: problem+json, health, correlation
ids), auth (the signed identity token the gateway hands to services), logs (JSON logs).
"""
