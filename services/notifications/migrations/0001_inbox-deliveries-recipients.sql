-- Up Migration
-- Forward-only: there is deliberately no Down section. A mistake is fixed by the next migration.

-- Which events the consumer has applied (@bazaar/event-bus handleOnce), beside their effects.
CREATE TABLE processed_events (
  consumer text NOT NULL,
  event_id text NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, event_id)
);

-- Local projection of user.registered.v1 (and of users-API lookups): where to write to a user.
-- PII: kept only to address mail, never logged.
CREATE TABLE recipients (
  user_id text PRIMARY KEY,
  email text NOT NULL,
  name text NOT NULL,
  source text NOT NULL CHECK (source IN ('event', 'users-api')),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE preferences (
  user_id text PRIMARY KEY,
  marketing_email boolean NOT NULL DEFAULT true,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- The in-app inbox: one entry per (source, user); source = an event id or an announcement key.
CREATE TABLE inbox_entries (
  id text PRIMARY KEY,
  user_id text NOT NULL,
  source_key text NOT NULL,
  kind text NOT NULL,
  category text NOT NULL CHECK (category IN ('transactional', 'marketing')),
  title text NOT NULL,
  body text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  read_at timestamptz,
  CONSTRAINT inbox_entries_source_user_key UNIQUE (source_key, user_id)
);
-- Serves "mine, newest first" with keyset pagination.
CREATE INDEX inbox_entries_user_page_idx ON inbox_entries (user_id, created_at DESC, id DESC);

-- The delivery log and outbox of emails: a row is the intent to send one message to one recipient,
-- written before any SMTP traffic (ADR 0005). (source_key, recipient_key) makes it exactly one.
CREATE TABLE deliveries (
  id text PRIMARY KEY,
  source_key text NOT NULL,
  -- A user id, or 'operators' for alerts.
  recipient_key text NOT NULL,
  user_id text,
  -- Fixed for operators; resolved at send time for users (projection, then the users API).
  to_address text,
  template text NOT NULL,
  params jsonb NOT NULL,
  category text NOT NULL CHECK (category IN ('transactional', 'marketing', 'operational')),
  -- Stable per (source, recipient): the same on every attempt, what reconciliation looks up.
  message_id text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'dead', 'suppressed')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  lease_until timestamptz,
  last_error text,
  -- The last failed attempt may have reached the relay (it broke during or after DATA): look it up
  -- before sending again. An attempt that never finished (lease expired) is in doubt as well.
  is_in_doubt boolean NOT NULL DEFAULT false,
  -- How 'sent' was established: the relay's answer, or a reconciliation lookup after a crash.
  outcome text CHECK (outcome IN ('accepted', 'reconciled')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  sent_at timestamptz,
  CONSTRAINT deliveries_source_recipient_key UNIQUE (source_key, recipient_key),
  CONSTRAINT deliveries_message_id_key UNIQUE (message_id)
);
-- The dispatcher's claim: due pending rows and expired leases, oldest first.
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at)
  WHERE status IN ('pending', 'sending');
CREATE INDEX deliveries_dead_idx ON deliveries (updated_at DESC) WHERE status = 'dead';
