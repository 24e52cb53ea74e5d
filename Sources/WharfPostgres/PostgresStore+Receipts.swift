import Foundation
import PostgresNIO
import WharfCore

/// Receipts on the shared registry. An `Idempotency-Key` holds across nodes: the receipt
/// is inserted `ON CONFLICT DO NOTHING` on the partner's key, so of two nodes committing
/// the same key at once one inserts and the other (waiting for it) finds the first
/// receipt and answers with it.
extension PostgresStore: ReceiptStore {
    public func commit(
        _ receipt: Receipt, audit: (ReceiptCommit) -> AuditEvent, install: () throws -> Void
    ) throws(WharfError) -> ReceiptCommit {
        let committedEvent = audit(.committed(receipt))
        let attempt = try transaction { connection -> ReceiptCommit in
            let inserted = try await connection.query("""
                INSERT INTO receipt (id, partner, filename, stored_name, size, sha256, received_at, idempotency_key, signature)
                VALUES (\(receipt.id), \(receipt.partner), \(receipt.filename), \(receipt.storedName), \(receipt.size), \(receipt.sha256),
                        \(receipt.receivedAt.roundedToMilliseconds), \(receipt.idempotencyKey), \(receipt.signature))
                ON CONFLICT (partner, idempotency_key) DO NOTHING
                RETURNING id
                """, logger: Self.quiet)
            var isNew = false
            for try await _ in inserted { isNew = true }
            if isNew {
                try await Self.insert(committedEvent, connection)
                try await Self.queueHookEvents(received: receipt, connection)
                return .committed(receipt)
            }
            guard let key = receipt.idempotencyKey,
                  let earlier = try await Self.receipts(connection, "SELECT * FROM receipt WHERE partner = \(receipt.partner) AND idempotency_key = \(key)").first
            else {
                throw WharfError(.conflict, "receipt \(receipt.id) could not be recorded: its key conflicts, but no earlier receipt has it")
            }
            return earlier.sha256 == receipt.sha256 && earlier.size == receipt.size ? .replay(earlier) : .conflict(earlier)
        }
        guard case .committed = attempt else {
            // A replay or a conflict writes nothing but its audit event, made by the caller's
            // closure (on this thread) once the earlier receipt is known, and committed next.
            try record(audit(attempt))
            return attempt
        }
        let withdrawn = AuditEvent(
            outcome: .refused, status: nil, partner: committedEvent.partner, subject: committedEvent.subject,
            fingerprint: committedEvent.fingerprint, remoteAddress: committedEvent.remoteAddress,
            detail: "receipt \(receipt.id) withdrawn: the file could not be moved into the inbox"
        )
        return try CommitThenInstall.run(
            commit: { () throws(WharfError) in attempt },
            install: { _ in try install() },
            withdraw: { _ in
                try transaction { connection in
                    try await connection.run("DELETE FROM receipt WHERE id = \(receipt.id)")
                    try await connection.run("DELETE FROM hook_event WHERE event = 'received' AND subject_id = \(receipt.id)")
                    try await Self.insert(withdrawn, connection)
                }
            }
        )
    }

    public func receipt(id: String) throws(WharfError) -> Receipt? {
        try withConnection { connection in try await Self.receipts(connection, "SELECT * FROM receipt WHERE id = \(id)").first }
    }

    public func receipts(partner: String?, limit: Int) throws(WharfError) -> [Receipt] {
        try withConnection { connection in
            try await Self.receipts(connection, """
                SELECT * FROM receipt WHERE \(partner)::text IS NULL OR partner = \(partner)
                ORDER BY received_at DESC, id DESC LIMIT \(limit)
                """)
        }
    }

    static func receipts(_ connection: PostgresConnection, _ query: PostgresQuery) async throws -> [Receipt] {
        var receipts: [Receipt] = []
        for try await row in try await connection.query(query, logger: quiet) {
            let row = row.makeRandomAccess()
            receipts.append(Receipt(
                id: try row["id"].decode(String.self), partner: try row["partner"].decode(String.self),
                filename: try row["filename"].decode(String.self), storedName: try row["stored_name"].decode(String.self),
                size: try row["size"].decode(Int64.self), sha256: try row["sha256"].decode(String.self),
                receivedAt: try row["received_at"].decode(Millis.self).date, idempotencyKey: try row["idempotency_key"].decode(String?.self),
                signature: try row["signature"].decode(String?.self)
            ))
        }
        return receipts
    }

    /// Queues a `received` event of `receipt` for each hook that wants one, in the receipt's
    /// transaction.
    static func queueHookEvents(received receipt: Receipt, _ connection: PostgresConnection) async throws {
        let at = receipt.receivedAt.roundedToMilliseconds
        try await connection.run("""
            INSERT INTO hook_event (hook_id, event, subject_id, partner, filename, size, sha256, stored_name, occurred_at, next_attempt_at)
            SELECT id, 'received', \(receipt.id), \(receipt.partner), \(receipt.filename), \(receipt.size), \(receipt.sha256),
                   \(receipt.storedName), \(at), \(at)
            FROM hook WHERE event = 'received' AND (partner IS NULL OR partner = \(receipt.partner))
            """)
    }
}
