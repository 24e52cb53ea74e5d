import Foundation
import PostgresNIO
import WharfCore

/// The audit trail on the shared registry: the same hash chain as SQLite's (`AuditChain`),
/// appended under one lock by every node, so it has one order.
extension PostgresStore: AuditTrail {
    public func record(_ event: AuditEvent) throws(WharfError) {
        try record(contentsOf: [event])
    }

    public func record(contentsOf events: [AuditEvent]) throws(WharfError) {
        guard !events.isEmpty else { return }
        try transaction { connection in
            for event in events { try await Self.insert(event, connection) }
        }
    }

    public func auditEvents(limit: Int) throws(WharfError) -> [AuditEvent] {
        try withConnection { connection in
            var events: [AuditEvent] = []
            for try await row in try await connection.query("SELECT * FROM audit_event ORDER BY id DESC LIMIT \(limit)", logger: Self.quiet) {
                events.append(try Self.auditEvent(from: row))
            }
            return events
        }
    }

    /// Walks the chain from the first event to the last; returns how many it checked, or
    /// throws naming the first event that was changed, or after which one was removed.
    public func verifyAudit() throws(WharfError) -> Int {
        try withConnection { connection in
            var previous = ""
            for try await hash in try await connection.query("SELECT last_pruned_hash FROM audit_anchor WHERE id = 1", logger: Self.quiet).decode(String.self) {
                previous = hash
            }
            var count = 0
            for try await row in try await connection.query("SELECT * FROM audit_event ORDER BY id", logger: Self.quiet) {
                let event = try Self.auditEvent(from: row)
                let id = event.id ?? 0
                guard event.previousHash == previous else {
                    throw WharfError(
                        .conflict, "the audit trail is broken at event \(id): an event before it was removed, changed or moved",
                        fix: "restore the database from a backup"
                    )
                }
                let recomputed = AuditChain.hash(previous: previous, canonical: AuditChain.canonical(event, at: event.at.registryText))
                guard recomputed == event.hash else {
                    throw WharfError(
                        .conflict, "the audit trail is broken at event \(id): its content is not what was recorded",
                        fix: "restore the database from a backup; the event was edited after it was written"
                    )
                }
                previous = recomputed
                count += 1
            }
            return count
        }
    }

    static func auditEvent(from row: PostgresRow) throws -> AuditEvent {
        let row = row.makeRandomAccess()
        var event = AuditEvent(
            at: try row["at"].decode(Millis.self).date, kind: AuditEvent.Kind(rawValue: try row["kind"].decode(String.self)) ?? .refusal,
            outcome: AuditEvent.Outcome(rawValue: try row["outcome"].decode(String.self)) ?? .refused,
            status: try row["status"].decode(Int?.self), partner: try row["partner"].decode(String?.self),
            subject: try row["subject"].decode(String?.self), fingerprint: try row["fingerprint"].decode(String?.self),
            remoteAddress: try row["remote_address"].decode(String?.self), detail: try row["detail"].decode(String?.self),
            actor: try row["actor"].decode(String?.self), command: try row["command"].decode(String?.self)
        )
        event.id = try row["id"].decode(Int64.self)
        event.previousHash = try row["previous_hash"].decode(String.self)
        event.hash = try row["hash"].decode(String.self)
        return event
    }
}

/// The defender's bans, shared: a ban one node makes is enforced by all (each reads them
/// back every few seconds).
extension PostgresStore: BanList {
    public func addressBans() throws(WharfError) -> [AddressBan] {
        try withConnection { connection in
            var bans: [AddressBan] = []
            let rows = try await connection.query("SELECT address, since, until, times, reason FROM address_ban ORDER BY since", logger: Self.quiet)
            for try await (address, since, until, times, reason) in rows.decode((String, Millis, Millis, Int, String).self) {
                bans.append(AddressBan(address: address, since: since.date, until: until.date, times: times, reason: reason))
            }
            return bans
        }
    }

    public func saveBan(_ ban: AddressBan) throws(WharfError) {
        let forgotten = ban.since.addingTimeInterval(-86_400).roundedToMilliseconds
        try transaction { connection in
            try await connection.run("""
                INSERT INTO address_ban (address, since, until, times, reason)
                VALUES (\(ban.address), \(ban.since.roundedToMilliseconds), \(ban.until.roundedToMilliseconds), \(ban.times), \(ban.reason))
                ON CONFLICT (address) DO UPDATE SET since = excluded.since, until = excluded.until, times = excluded.times, reason = excluded.reason
                """)
            try await connection.run("DELETE FROM address_ban WHERE until < \(forgotten)")
        }
    }
}

/// Resumable uploads, shared: a partner whose connection broke may resume on another node
/// (the partial file is on the shared file system).
extension PostgresStore: PartialUploadStore {
    public func createPartialUpload(_ upload: PartialUpload) throws(WharfError) {
        try withConnection { connection in
            try await connection.run("""
                INSERT INTO partial_upload (id, partner, filename, length, "offset", sha256, idempotency_key, created_at, updated_at)
                VALUES (\(upload.id), \(upload.partner), \(upload.filename), \(upload.length), \(upload.offset), \(upload.sha256),
                        \(upload.idempotencyKey), \(upload.createdAt.roundedToMilliseconds), \(upload.updatedAt.roundedToMilliseconds))
                """)
        }
    }

    public func partialUpload(id: String) throws(WharfError) -> PartialUpload? {
        try partialUploads(where: id).first
    }

    public func recordPartialUpload(id: String, offset: Int64, length: Int64?, at time: Date) throws(WharfError) {
        try withConnection { connection in
            // The offset never goes back, and a known length stays known.
            try await connection.run("""
                UPDATE partial_upload SET "offset" = greatest("offset", \(offset)), length = coalesce(length, \(length)),
                                          updated_at = \(time.roundedToMilliseconds)
                WHERE id = \(id)
                """)
        }
    }

    public func removePartialUpload(id: String) throws(WharfError) {
        try withConnection { connection in try await connection.run("DELETE FROM partial_upload WHERE id = \(id)") }
    }

    public func partialUploads() throws(WharfError) -> [PartialUpload] {
        try partialUploads(where: nil)
    }

    private func partialUploads(where id: String?) throws(WharfError) -> [PartialUpload] {
        try withConnection { connection in
            var uploads: [PartialUpload] = []
            let rows = try await connection.query("""
                SELECT id, partner, filename, length, "offset", sha256, idempotency_key, created_at, updated_at FROM partial_upload
                WHERE \(id)::text IS NULL OR id = \(id) ORDER BY created_at, id
                """, logger: Self.quiet)
            for try await (id, partner, filename, length, offset, sha256, key, created, updated)
                in rows.decode((String, String, String, Int64?, Int64, String?, String?, Millis, Millis).self) {
                uploads.append(PartialUpload(
                    id: id, partner: partner, filename: filename, length: length, offset: offset, sha256: sha256,
                    idempotencyKey: key, createdAt: created.date, updatedAt: updated.date
                ))
            }
            return uploads
        }
    }
}
