-- Up Migration
-- Forward-only: there is deliberately no Down section. A mistake is fixed by the next migration.

CREATE TABLE users (
  id text PRIMARY KEY,
  -- Stored normalised (trimmed, lower-cased, ASCII domain), so equality is the uniqueness rule.
  email text NOT NULL,
  name text NOT NULL,
  password_hash text NOT NULL,
  role text NOT NULL DEFAULT 'customer' CHECK (role IN ('customer', 'admin')),
  email_verified boolean NOT NULL DEFAULT false,
  -- Incremented on every change; the profile cache refuses to store an older version.
  version bigint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT users_email_key UNIQUE (email)
);

-- One family per login; every refresh token rotated from it belongs to it.
CREATE TABLE refresh_token_families (
  id uuid PRIMARY KEY,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  revoked_reason text CHECK (revoked_reason IN ('logout', 'reuse'))
);
CREATE INDEX refresh_token_families_user_idx ON refresh_token_families (user_id);

CREATE TABLE refresh_tokens (
  -- SHA-256 of the opaque token: the token itself is never stored.
  token_hash bytea PRIMARY KEY,
  family_id uuid NOT NULL REFERENCES refresh_token_families (id) ON DELETE CASCADE,
  issued_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  -- Set when rotated; presenting a used token again is reuse.
  used_at timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

CREATE TABLE signing_keys (
  kid text PRIMARY KEY,
  algorithm text NOT NULL,
  public_jwk jsonb NOT NULL,
  -- AES-256-GCM under the key-encryption key (USERS_KEY_ENCRYPTION_KEY); NULL once retired.
  private_jwk_ciphertext bytea,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- Set when a newer key takes over signing.
  superseded_at timestamptz,
  -- The key leaves the JWKS after this: the last token it signed has expired by then.
  retire_after timestamptz
);
-- At most one key signs at a time.
CREATE UNIQUE INDEX signing_keys_one_active_idx ON signing_keys ((true)) WHERE superseded_at IS NULL;

-- The transactional outbox, in the shape @bazaar/event-bus's relay reads (outboxSchemaSql('outbox')).
CREATE TABLE outbox (
  id bigserial PRIMARY KEY,
  event_id text NOT NULL UNIQUE,
  type text NOT NULL,
  payload jsonb NOT NULL,
  headers jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('outbox', '');
  RETURN NULL;
END
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
  FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
