-- The id of the secret that signed each session and API key (the JWT `kid`, a one-way digest
-- of the secret, never the secret), so that `ashgate secrets status` can say what still depends
-- on a previous secret before it is retired. NULL: signed before ids were recorded; identity-svc
-- attributes those to PHOENIX_SECRET at a start without ASHGATE_PREVIOUS_SECRETS, the only
-- secret that could have signed a usable one.
ALTER TABLE refresh_tokens ADD COLUMN secret_id TEXT;
ALTER TABLE api_keys ADD COLUMN secret_id TEXT;
