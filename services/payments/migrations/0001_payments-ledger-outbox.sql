-- Up Migration
-- Forward-only: there is deliberately no Down section. A mistake is fixed by the next migration.

-- One payment per order (its id is derived from the order id, see payment.ts), so a redelivered or
-- retried order.placed.v1 can never create a second one.
CREATE TABLE payments (
  id text PRIMARY KEY,
  order_id text NOT NULL,
  user_id text NOT NULL,
  currency char(3) NOT NULL,
  amount bigint NOT NULL CHECK (amount >= 0),
  status text NOT NULL CHECK (
    status IN ('AUTHORIZED', 'FAILED', 'CAPTURED', 'PARTIALLY_REFUNDED', 'REFUNDED', 'VOIDED', 'CANCELLED')
  ),
  -- The processor's id of the authorization; set exactly when it approved one.
  authorization_id text,
  failure_code text,
  failure_message text,
  captured_amount bigint NOT NULL DEFAULT 0 CHECK (captured_amount >= 0 AND captured_amount <= amount),
  refunded_amount bigint NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0 AND refunded_amount <= captured_amount),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT payments_order_key UNIQUE (order_id),
  CONSTRAINT payments_authorized_has_id CHECK (
    status IN ('FAILED', 'CANCELLED') OR authorization_id IS NOT NULL
  )
);
CREATE INDEX payments_authorized_idx ON payments (order_id) WHERE status = 'AUTHORIZED';

-- Orders cancelled as seen by payments. Remembered even when no payment exists yet: an
-- authorization that arrives after its order was cancelled is voided (the sweeper looks here).
CREATE TABLE order_cancellations (
  order_id text PRIMARY KEY,
  reason text NOT NULL,
  cancelled_at timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
);

-- Refunds, one row per admin request (keyed by its Idempotency-Key) or order cancellation.
-- PENDING reserves the amount until the processor has answered.
CREATE TABLE refunds (
  id text PRIMARY KEY,
  payment_id text NOT NULL REFERENCES payments (id),
  idempotency_key text NOT NULL,
  fingerprint text NOT NULL,
  currency char(3) NOT NULL,
  amount bigint NOT NULL CHECK (amount > 0),
  status text NOT NULL CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
  failure_code text,
  failure_message text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT refunds_key UNIQUE (payment_id, idempotency_key)
);

-- The double-entry ledger: every money movement is a transaction whose lines sum to zero per
-- currency (debits positive, credits negative), enforced at commit by the trigger below.
CREATE TABLE ledger_transactions (
  id text PRIMARY KEY,
  payment_id text NOT NULL REFERENCES payments (id),
  kind text NOT NULL CHECK (kind IN ('authorization', 'capture', 'void', 'refund')),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_transactions_payment_idx ON ledger_transactions (payment_id);

CREATE TABLE ledger_lines (
  transaction_id text NOT NULL REFERENCES ledger_transactions (id),
  account text NOT NULL,
  currency char(3) NOT NULL,
  amount bigint NOT NULL CHECK (amount <> 0),
  PRIMARY KEY (transaction_id, account, currency)
);
CREATE INDEX ledger_lines_account_idx ON ledger_lines (account, currency);

CREATE FUNCTION ledger_transaction_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (
    SELECT 1 FROM ledger_lines WHERE transaction_id = NEW.transaction_id
    GROUP BY currency HAVING sum(amount) <> 0
  ) THEN
    RAISE EXCEPTION 'ledger transaction % does not balance', NEW.transaction_id
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END
$$;
-- Deferred to commit: the lines of one transaction are inserted one statement at a time.
CREATE CONSTRAINT TRIGGER ledger_lines_balanced AFTER INSERT OR UPDATE ON ledger_lines
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_transaction_balanced();

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

-- Events each consumer group has applied (processedEventsSchemaSql()): handleOnce's dedupe.
CREATE TABLE processed_events (
  consumer text NOT NULL,
  event_id text NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, event_id)
);
