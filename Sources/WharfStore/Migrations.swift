import Foundation
import GRDB
import WharfCore

/// The registry's schema, as named migrations. Append new ones; never edit a released one.
///
/// The schema owns the invariants: partner names are slugs, statuses are known, an
/// identity belongs to exactly one partner, a client certificate never exists without
/// its key. Receipts and audit events keep no foreign key to `partner`: they are history
/// and outlive a partner's removal.
enum Migrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-partner-registry") { db in
            try db.execute(sql: """
                CREATE TABLE partner (
                    name TEXT PRIMARY KEY NOT NULL
                        CHECK (length(name) BETWEEN 1 AND 63
                               AND name GLOB '[a-z0-9]*'
                               AND name NOT GLOB '*[^a-z0-9-]*'),
                    display_name TEXT NOT NULL CHECK (length(display_name) > 0),
                    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
                    trust_ca_pem TEXT,
                    url TEXT CHECK (url IS NULL OR url GLOB 'https://*'),
                    server_ca_pem TEXT,
                    client_cert_pem TEXT,
                    client_key_pem TEXT,
                    created_at DATETIME NOT NULL,
                    updated_at DATETIME NOT NULL,
                    CHECK ((client_cert_pem IS NULL) = (client_key_pem IS NULL))
                );

                CREATE TABLE partner_identity (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    partner TEXT NOT NULL REFERENCES partner(name) ON DELETE CASCADE,
                    kind TEXT NOT NULL CHECK (kind IN ('subject', 'fingerprint')),
                    value TEXT NOT NULL,
                    match_key TEXT NOT NULL,
                    not_before DATETIME,
                    not_after DATETIME,
                    CHECK (not_before IS NULL OR not_after IS NULL OR not_before < not_after),
                    UNIQUE (kind, match_key)
                );
                CREATE INDEX partner_identity_partner ON partner_identity(partner);

                CREATE TABLE partner_pin (
                    partner TEXT NOT NULL REFERENCES partner(name) ON DELETE CASCADE,
                    position INTEGER NOT NULL,
                    pin TEXT NOT NULL CHECK (pin GLOB 'sha256//*'),
                    PRIMARY KEY (partner, pin)
                );
                """)
        }
        migrator.registerMigration("v2-inbound-receipts-and-audit") { db in
            try db.execute(sql: """
                ALTER TABLE partner ADD COLUMN max_upload_bytes INTEGER
                    CHECK (max_upload_bytes IS NULL OR max_upload_bytes > 0);

                CREATE TABLE receipt (
                    id TEXT PRIMARY KEY NOT NULL,
                    partner TEXT NOT NULL,
                    filename TEXT NOT NULL CHECK (length(filename) > 0),
                    stored_name TEXT NOT NULL,
                    size INTEGER NOT NULL CHECK (size >= 0),
                    sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
                    received_at DATETIME NOT NULL,
                    idempotency_key TEXT,
                    UNIQUE (partner, stored_name),
                    UNIQUE (partner, idempotency_key)
                );
                CREATE INDEX receipt_partner_received ON receipt(partner, received_at);

                CREATE TABLE audit_event (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    at DATETIME NOT NULL,
                    outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'replayed', 'refused')),
                    status INTEGER,
                    partner TEXT,
                    subject TEXT,
                    fingerprint TEXT,
                    remote_address TEXT,
                    detail TEXT
                );
                """)
        }
        migrator.registerMigration("v3-outbound-transfers") { db in
            try db.execute(sql: """
                ALTER TABLE partner ADD COLUMN retry_initial_seconds REAL CHECK (retry_initial_seconds IS NULL OR retry_initial_seconds >= 0);
                ALTER TABLE partner ADD COLUMN retry_maximum_seconds REAL CHECK (retry_maximum_seconds IS NULL OR retry_maximum_seconds >= 0);
                ALTER TABLE partner ADD COLUMN max_attempts INTEGER CHECK (max_attempts IS NULL OR max_attempts > 0);
                ALTER TABLE partner ADD COLUMN max_age_seconds REAL CHECK (max_age_seconds IS NULL OR max_age_seconds > 0);
                ALTER TABLE partner ADD COLUMN max_deliveries INTEGER CHECK (max_deliveries IS NULL OR max_deliveries > 0);

                CREATE TABLE transfer (
                    id TEXT PRIMARY KEY NOT NULL,
                    partner TEXT NOT NULL,
                    filename TEXT NOT NULL CHECK (length(filename) > 0),
                    size INTEGER NOT NULL CHECK (size >= 0),
                    sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
                    state TEXT NOT NULL
                        CHECK (state IN ('queued', 'sending', 'retrying', 'delivered', 'dead', 'cancelled')),
                    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                    created_at DATETIME NOT NULL,
                    queued_at DATETIME NOT NULL,
                    next_attempt_at DATETIME,
                    last_error TEXT,
                    receipt TEXT,
                    delivered_at DATETIME,
                    CHECK ((state = 'delivered') = (delivered_at IS NOT NULL))
                );
                CREATE INDEX transfer_due ON transfer(state, next_attempt_at);
                CREATE INDEX transfer_partner ON transfer(partner, created_at);

                CREATE TABLE delivery_attempt (
                    transfer_id TEXT NOT NULL REFERENCES transfer(id) ON DELETE CASCADE,
                    number INTEGER NOT NULL CHECK (number > 0),
                    started_at DATETIME NOT NULL,
                    duration_seconds REAL NOT NULL,
                    curl_code INTEGER NOT NULL,
                    http_status INTEGER,
                    bytes_sent INTEGER NOT NULL,
                    error TEXT,
                    PRIMARY KEY (transfer_id, number)
                );
                """)
        }
        migrator.registerMigration("v4-schedules") { db in
            try db.execute(sql: """
                CREATE TABLE schedule (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    partner TEXT NOT NULL REFERENCES partner(name) ON DELETE CASCADE,
                    cron TEXT NOT NULL,
                    source_directory TEXT NOT NULL,
                    pattern TEXT NOT NULL DEFAULT '*',
                    keep INTEGER NOT NULL CHECK (keep IN (0, 1)),
                    next_run_at DATETIME NOT NULL,
                    created_at DATETIME NOT NULL
                );

                -- With --keep, what was sent of each source file, so it is sent again only if it changes.
                CREATE TABLE schedule_sent (
                    schedule_id INTEGER NOT NULL REFERENCES schedule(id) ON DELETE CASCADE,
                    path TEXT NOT NULL,
                    sha256 TEXT NOT NULL,
                    PRIMARY KEY (schedule_id, path)
                );
                """)
        }
        migrator.registerMigration("v5-partner-trust-index") { db in
            // The listener reads the partners' own CAs for every new connection: with this
            // index that read costs as many rows as there are such CAs, not partners.
            try db.execute(sql: "CREATE INDEX partner_trust_ca ON partner(name) WHERE trust_ca_pem IS NOT NULL")
        }
        migrator.registerMigration("v6-transfer-queue-order") { db in
            // The worker claims in this order after every delivery: read from this index,
            // a claim stops after the rows it takes instead of sorting the whole queue.
            try db.execute(sql: """
                CREATE INDEX transfer_queue ON transfer(next_attempt_at, created_at)
                    WHERE state IN ('queued', 'retrying')
                """)
        }
        migrator.registerMigration("v7-partner-generation") { db in
            // The listener remembers which partner a certificate maps to and confirms the
            // decision when an upload is committed by reading this one number: triggers raise
            // it whenever a partner or one of its identities is added, changed or removed.
            var statements = """
                CREATE TABLE partner_generation (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    value INTEGER NOT NULL
                );
                INSERT INTO partner_generation (id, value) VALUES (1, 0);

                """
            for table in ["partner", "partner_identity"] {
                for event in ["INSERT", "UPDATE", "DELETE"] {
                    statements += """
                        CREATE TRIGGER \(table)_\(event.lowercased())_generation AFTER \(event) ON \(table)
                        BEGIN UPDATE partner_generation SET value = value + 1; END;

                        """
                }
            }
            try db.execute(sql: statements)
        }
        migrator.registerMigration("v8-attempt-counts-and-unsent-attempts") { db in
            // `attempts` counts every attempt of a transfer's life, as `transfers show` lists
            // them; the retry policy counts those since the last `transfers retry`. An attempt
            // that never reached libcurl (it was not loaded, the file could not be read) has
            // no curl code rather than a made-up one.
            try db.execute(sql: """
                ALTER TABLE transfer ADD COLUMN attempts_since_queued INTEGER NOT NULL DEFAULT 0
                    CHECK (attempts_since_queued >= 0);
                UPDATE transfer SET attempts_since_queued = attempts,
                                    attempts = (SELECT count(*) FROM delivery_attempt WHERE transfer_id = transfer.id);

                CREATE TABLE delivery_attempt_v8 (
                    transfer_id TEXT NOT NULL REFERENCES transfer(id) ON DELETE CASCADE,
                    number INTEGER NOT NULL CHECK (number > 0),
                    started_at DATETIME NOT NULL,
                    duration_seconds REAL NOT NULL,
                    curl_code INTEGER,
                    http_status INTEGER,
                    bytes_sent INTEGER NOT NULL,
                    error TEXT,
                    PRIMARY KEY (transfer_id, number)
                );
                INSERT INTO delivery_attempt_v8 SELECT * FROM delivery_attempt;
                DROP TABLE delivery_attempt;
                ALTER TABLE delivery_attempt_v8 RENAME TO delivery_attempt;
                """)
        }
        migrator.registerMigration("v9-audit-chain-and-operators") { db in
            // Operators' changes and delivery outcomes join the audit trail, and every event is
            // chained to the one before it by SHA-256 (see Registry+Audit.swift). Events of
            // earlier versions are chained in their order here.
            try db.execute(sql: """
                CREATE TABLE audit_event_v9 (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    at DATETIME NOT NULL,
                    kind TEXT NOT NULL CHECK (kind IN ('upload', 'refusal', 'admin', 'delivery')),
                    outcome TEXT NOT NULL
                        CHECK (outcome IN ('accepted', 'replayed', 'refused', 'changed', 'delivered', 'retrying', 'dead')),
                    status INTEGER,
                    partner TEXT,
                    subject TEXT,
                    fingerprint TEXT,
                    remote_address TEXT,
                    detail TEXT,
                    actor TEXT,
                    command TEXT,
                    previous_hash TEXT NOT NULL,
                    hash TEXT NOT NULL CHECK (length(hash) = 64)
                );
                """)
            var previous = ""
            let rows = try Row.fetchCursor(db, sql: "SELECT * FROM audit_event ORDER BY id")
            while let row = try rows.next() {
                let outcome = AuditEvent.Outcome(rawValue: row["outcome"]) ?? .refused
                let event = AuditEvent(
                    at: Date(), kind: outcome == .refused ? .refusal : .upload, outcome: outcome, status: row["status"],
                    partner: row["partner"], subject: row["subject"], fingerprint: row["fingerprint"],
                    remoteAddress: row["remote_address"], detail: row["detail"]
                )
                let at: String = row["at"]
                let hash = AuditChain.hash(previous: previous, canonical: AuditChain.canonical(event, at: at))
                try db.execute(
                    sql: """
                        INSERT INTO audit_event_v9 (id, at, kind, outcome, status, partner, subject, fingerprint, remote_address,
                                                    detail, previous_hash, hash)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [row["id"] as Int64, at, event.kind.rawValue, outcome.rawValue, event.status, event.partner,
                                event.subject, event.fingerprint, event.remoteAddress, event.detail, previous, hash]
                )
                previous = hash
            }
            try db.execute(sql: """
                DROP TABLE audit_event;
                ALTER TABLE audit_event_v9 RENAME TO audit_event;
                CREATE INDEX audit_event_partner ON audit_event(partner, id);
                """)
        }
        migrator.registerMigration("v10-transfer-metrics-index") { db in
            // A scrape counts transfers by partner and state and finds each partner's oldest
            // waiting one; this index answers both without reading the table.
            try db.execute(sql: "CREATE INDEX transfer_partner_state ON transfer(partner, state, queued_at)")
        }
        migrator.registerMigration("v11-defender-and-audit-retention") { db in
            // The defender's bans, shared with the CLI (`wharf defender list/unban`); and where
            // the audit chain starts once its oldest events were pruned: the hash of the last
            // event removed, which the first one kept must follow.
            try db.execute(sql: """
                CREATE TABLE address_ban (
                    address TEXT PRIMARY KEY,
                    since DATETIME NOT NULL,
                    until DATETIME NOT NULL,
                    times INTEGER NOT NULL CHECK (times >= 0),
                    reason TEXT NOT NULL
                );
                CREATE TABLE audit_anchor (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    pruned INTEGER NOT NULL,
                    last_pruned_hash TEXT NOT NULL CHECK (length(last_pruned_hash) = 64),
                    pruned_before DATETIME NOT NULL
                );
                CREATE INDEX audit_event_at ON audit_event(at);
                """)
        }
        migrator.registerMigration("v12-revoked-certificates") { db in
            // Certificates revoked by fingerprint or by the serial Wharf's CA gave them. A
            // revocation raises the partner generation, so the listener's remembered
            // decisions and its TLS context are made again.
            try db.execute(sql: """
                CREATE TABLE revoked_certificate (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    fingerprint TEXT CHECK (fingerprint IS NULL OR length(fingerprint) = 64),
                    serial TEXT,
                    partner TEXT,
                    revoked_at DATETIME NOT NULL,
                    reason TEXT NOT NULL,
                    CHECK (fingerprint IS NOT NULL OR serial IS NOT NULL)
                );
                CREATE UNIQUE INDEX revoked_certificate_fingerprint ON revoked_certificate(fingerprint) WHERE fingerprint IS NOT NULL;
                CREATE UNIQUE INDEX revoked_certificate_serial ON revoked_certificate(serial) WHERE serial IS NOT NULL;
                CREATE TRIGGER revoked_certificate_insert_generation AFTER INSERT ON revoked_certificate
                BEGIN UPDATE partner_generation SET value = value + 1; END;
                """)
        }
        migrator.registerMigration("v13-pinned-partner-certificates") { db in
            // Client certificates a partner presents that no trusted CA issued (self-signed
            // ones): PEM, each also a fingerprint identity of the partner, trusted by the
            // listener for that partner only.
            try db.execute(sql: "ALTER TABLE partner ADD COLUMN pinned_certificates_pem TEXT")
        }
        migrator.registerMigration("v14-issued-certificates") { db in
            // The certificates Wharf's CA issued to partners, so that one revoked by its
            // fingerprint can be listed by its serial in Wharf's CRL.
            try db.execute(sql: """
                CREATE TABLE issued_certificate (
                    serial TEXT PRIMARY KEY,
                    fingerprint TEXT NOT NULL UNIQUE CHECK (length(fingerprint) = 64),
                    partner TEXT NOT NULL,
                    not_after DATETIME NOT NULL,
                    issued_at DATETIME NOT NULL
                )
                """)
        }
        migrator.registerMigration("v15-partner-crl") { db in
            // The file holding the CRL of a partner's own CA, read by the listener.
            try db.execute(sql: "ALTER TABLE partner ADD COLUMN crl_path TEXT")
        }
        migrator.registerMigration("v16-pull-delivery") { db in
            // A pull partner fetches its files (`GET /outbox`) instead of being sent them;
            // a fetch acknowledged is an attempt, with the address that fetched it.
            try db.execute(sql: """
                ALTER TABLE partner ADD COLUMN delivery_mode TEXT NOT NULL DEFAULT 'push' CHECK (delivery_mode IN ('push', 'pull'));
                ALTER TABLE delivery_attempt ADD COLUMN remote_address TEXT;
                """)
        }
        migrator.registerMigration("v17-signed-receipts") { db in
            // The JWS Wharf's server key made of the receipt's canonical JSON, as answered.
            try db.execute(sql: "ALTER TABLE receipt ADD COLUMN signature TEXT")
        }
        migrator.registerMigration("v18-hooks") { db in
            // Downstream notifications: a hook runs a command (`exec`, the JSON array of its
            // words) or posts to a URL when its event happens; each event is queued in the
            // transaction of what it describes and dispatched at least once.
            try db.execute(sql: """
                CREATE TABLE hook (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    event TEXT NOT NULL CHECK (event IN ('received', 'delivered', 'dead')),
                    partner TEXT,
                    exec TEXT,
                    url TEXT,
                    ca_file TEXT,
                    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
                    retry_initial_seconds REAL NOT NULL CHECK (retry_initial_seconds >= 0),
                    timeout_seconds REAL NOT NULL CHECK (timeout_seconds > 0),
                    created_at DATETIME NOT NULL,
                    CHECK ((exec IS NULL) <> (url IS NULL))
                );
                CREATE INDEX hook_event_kind ON hook(event);
                CREATE TABLE hook_event (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    hook_id INTEGER NOT NULL REFERENCES hook(id) ON DELETE CASCADE,
                    event TEXT NOT NULL,
                    subject_id TEXT NOT NULL,
                    partner TEXT NOT NULL,
                    filename TEXT NOT NULL,
                    size INTEGER NOT NULL,
                    sha256 TEXT NOT NULL,
                    stored_name TEXT,
                    reason TEXT,
                    occurred_at DATETIME NOT NULL,
                    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at DATETIME,
                    last_error TEXT,
                    finished_at DATETIME
                );
                CREATE INDEX hook_event_due ON hook_event(next_attempt_at) WHERE state = 'pending';
                CREATE INDEX hook_event_subject ON hook_event(subject_id);
                CREATE INDEX hook_event_hook ON hook_event(hook_id, id);
                """)
        }
        migrator.registerMigration("v19-receiver-receipt-signatures") { db in
            // The JWS a Wharf receiver signed its receipt with, verified on delivery.
            try db.execute(sql: "ALTER TABLE transfer ADD COLUMN receipt_signature TEXT")
        }
        migrator.registerMigration("v20-partial-uploads") { db in
            // Resumable uploads not yet complete: the offset is what is fsynced in
            // spool/partial/{id}.part and may have been reported; the id becomes the receipt's.
            try db.execute(sql: """
                CREATE TABLE partial_upload (
                    id TEXT PRIMARY KEY,
                    partner TEXT NOT NULL REFERENCES partner(name) ON DELETE CASCADE ON UPDATE CASCADE,
                    filename TEXT NOT NULL,
                    length INTEGER CHECK (length >= 0),
                    "offset" INTEGER NOT NULL DEFAULT 0 CHECK ("offset" >= 0),
                    sha256 TEXT,
                    idempotency_key TEXT,
                    created_at DATETIME NOT NULL,
                    updated_at DATETIME NOT NULL
                )
                """)
        }
        migrator.registerMigration("v21-transfer-upload-location") { db in
            // A Wharf receiver's resumable upload of a transfer whose attempt broke.
            try db.execute(sql: "ALTER TABLE transfer ADD COLUMN upload_location TEXT")
        }
        return migrator
    }
}
