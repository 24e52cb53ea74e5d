import Crypto
import Foundation
import GRDB
import WharfCore

/// The audit trail, as a hash chain: each event stores the SHA-256 of the event before it
/// (`previous_hash`) and of that hash with its own canonical content (`hash`). An event
/// changed, deleted or moved in the table breaks the chain at that point; one removed from
/// the end shows against the latest hash an operator kept (`wharf audit head`).
extension Registry: AuditTrail {
    /// Appends `event`, chained to the last one; durable when this returns.
    public func record(_ event: AuditEvent) throws(WharfError) {
        try write { db in try Self.insert(event, db) }
    }

    /// Appends `events` in order, in one transaction; durable when this returns.
    public func record(contentsOf events: [AuditEvent]) throws(WharfError) {
        guard !events.isEmpty else { return }
        try write { db in
            for event in events { try Self.insert(event, db) }
        }
    }

    /// Removes the events older than `cutoff`, keeping the chain verifiable: the hash of
    /// the last one removed is kept (`audit_anchor`), and the first event kept must follow
    /// it. Records the pruning itself as an event. Returns how many were removed.
    @discardableResult
    public func pruneAudit(before cutoff: Date, audit: (Int) -> AuditEvent) throws(WharfError) -> Int {
        try write { db in
            guard let last = try Row.fetchOne(
                db, sql: "SELECT id, hash FROM audit_event WHERE at < ? ORDER BY id DESC LIMIT 1", arguments: [cutoff.stored]
            ) else { return 0 }
            let lastID: Int64 = last["id"]
            // Events are in time order by id; remove up to the newest one past the cutoff.
            try db.execute(sql: "DELETE FROM audit_event WHERE id <= ?", arguments: [lastID])
            let removed = db.changesCount
            let earlier = try Int.fetchOne(db, sql: "SELECT pruned FROM audit_anchor WHERE id = 1") ?? 0
            try db.execute(
                sql: "INSERT OR REPLACE INTO audit_anchor (id, pruned, last_pruned_hash, pruned_before) VALUES (1, ?, ?, ?)",
                arguments: [earlier + removed, last["hash"] as String, cutoff.stored]
            )
            try Self.insert(audit(removed), db)
            return removed
        }
    }

    /// How many events were pruned so far, and before when; `nil` if none was.
    public func auditPruning() throws(WharfError) -> (pruned: Int, before: Date)? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT pruned, pruned_before FROM audit_anchor WHERE id = 1").map { ($0["pruned"], $0.date("pruned_before")) }
        }
    }

    /// Inserts `event` in the transaction of `db`, chained to the event before it. Every
    /// writer inserts inside a write transaction, so the chain has one order.
    static func insert(_ event: AuditEvent, _ db: Database) throws {
        // The last event's hash; after a pruning that left none, the last one removed.
        let previous = try String.fetchOne(db.cachedStatement(sql: """
                SELECT COALESCE((SELECT hash FROM audit_event ORDER BY id DESC LIMIT 1),
                                (SELECT last_pruned_hash FROM audit_anchor WHERE id = 1))
                """)) ?? ""
        let at = event.at.stored.text
        let hash = AuditChain.hash(previous: previous, canonical: AuditChain.canonical(event, at: at))
        try db.cachedStatement(sql: """
                INSERT INTO audit_event (at, kind, outcome, status, partner, subject, fingerprint, remote_address, detail,
                                         actor, command, previous_hash, hash)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(
            arguments: [at, event.kind.rawValue, event.outcome.rawValue, event.status, event.partner, event.subject,
                        event.fingerprint, event.remoteAddress, event.detail, event.actor, event.command, previous, hash]
        )
    }

    /// The most recent audit events, newest first.
    public func auditEvents(limit: Int = 100) throws(WharfError) -> [AuditEvent] {
        try auditEvents(AuditFilter(), limit: limit)
    }

    /// The most recent audit events that pass `filter`, newest first.
    public func auditEvents(_ filter: AuditFilter, limit: Int = 100) throws(WharfError) -> [AuditEvent] {
        try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM audit_event
                    WHERE (?1 IS NULL OR partner = ?1) AND (?2 IS NULL OR at >= ?2) AND (?3 IS NULL OR kind = ?3)
                      AND (?4 IS NULL OR outcome = ?4)
                    ORDER BY id DESC LIMIT ?5
                    """,
                arguments: [filter.partner, filter.since?.stored, filter.kind?.rawValue, filter.outcome?.rawValue, limit]
            ).map(Self.auditEvent(from:))
        }
    }

    /// The hash of the latest event (`""` when there is none).
    public func auditHead() throws(WharfError) -> (count: Int, hash: String) {
        try read { db in
            let count = try Int.fetchOne(db, sql: "SELECT count(*) FROM audit_event") ?? 0
            let hash = try String.fetchOne(db, sql: """
                SELECT COALESCE((SELECT hash FROM audit_event ORDER BY id DESC LIMIT 1),
                                (SELECT last_pruned_hash FROM audit_anchor WHERE id = 1))
                """)
            return (count, hash ?? "")
        }
    }

    /// Walks the chain from the first event to the last; returns how many it checked, or
    /// throws naming the first event that was changed, or after which one was removed or
    /// moved. With `head`, the latest hash must be that one (catches events removed from
    /// the end).
    public func verifyAudit(head expected: String? = nil) throws(WharfError) -> Int {
        try read { db in
            // After a pruning, the first event kept follows the last one removed.
            var previous = try String.fetchOne(db, sql: "SELECT last_pruned_hash FROM audit_anchor WHERE id = 1") ?? ""
            var count = 0
            let rows = try Row.fetchCursor(db, sql: "SELECT * FROM audit_event ORDER BY id")
            while let row = try rows.next() {
                let id: Int64 = row["id"]
                let stored: String? = row["previous_hash"]
                if stored != previous {
                    throw WharfError(
                        .conflict, "the audit trail is broken at event \(id): an event before it was removed, changed or moved",
                        fix: "restore the registry from a backup, and keep `wharf audit head` elsewhere to catch it sooner"
                    )
                }
                let event = Self.auditEvent(from: row)
                let recomputed = AuditChain.hash(previous: stored ?? "", canonical: AuditChain.canonical(event, at: row["at"]))
                guard recomputed == (row["hash"] as String?) else {
                    throw WharfError(
                        .conflict, "the audit trail is broken at event \(id): its content is not what was recorded",
                        fix: "restore the registry from a backup; the event was edited after it was written"
                    )
                }
                previous = recomputed
                count += 1
            }
            if let expected, previous != expected {
                throw WharfError(
                    .conflict, "the audit trail ends at \(previous.isEmpty ? "nothing" : previous), not at the head \(expected)",
                    fix: "events were removed from its end (or the head is of another home); restore from a backup"
                )
            }
            return count
        }
    }

    static func auditEvent(from row: Row) -> AuditEvent {
        var event = AuditEvent(
            at: row.date("at"), kind: AuditEvent.Kind(rawValue: row["kind"]) ?? .refusal,
            outcome: AuditEvent.Outcome(rawValue: row["outcome"]) ?? .refused, status: row["status"],
            partner: row["partner"], subject: row["subject"], fingerprint: row["fingerprint"],
            remoteAddress: row["remote_address"], detail: row["detail"], actor: row["actor"], command: row["command"]
        )
        event.id = row["id"]
        event.previousHash = row["previous_hash"]
        event.hash = row["hash"]
        return event
    }
}
