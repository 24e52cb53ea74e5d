import Foundation
import PostgresNIO
import WharfCore

/// Receipts on the shared registry. An `Idempotency-Key` holds across nodes: the receipt
/// is inserted `ON CONFLICT DO NOTHING` on the partner's key, so of two nodes committing
/// the same key at once one inserts and the other (waiting for it) finds the first
/// receipt and answers with it.
extension PostgresStore: ReceiptStore {
    public func commit(
        _ receipt: Receipt, whilePartnersAt partners: Int64?, audit: (ReceiptCommit) -> AuditEvent, install: () throws -> Void
    ) throws(WharfError) -> ReceiptCommit? {
        let committedEvent = audit(.committed(receipt))
        // One statement, committed on its own (see `ReceiptCommitStatement`).
        let statement = ReceiptCommitStatement(receipt: receipt, event: committedEvent, partners: partners)
        let attempt = try withConnection { connection -> ReceiptCommit? in
            var inserted = 0
            for try await _ in try await connection.execute(statement, logger: Self.quiet) { inserted += 1 }
            if inserted == 1 { return .committed(receipt) }
            // Nothing inserted: the partners changed, or the key was used before.
            if let partners, try await Self.partnerGeneration(connection) != partners { return nil }
            guard let key = receipt.idempotencyKey,
                  let earlier = try await Self.receipts(connection, "SELECT * FROM receipt WHERE partner = \(receipt.partner) AND idempotency_key = \(key)").first
            else {
                throw WharfError(.conflict, "receipt \(receipt.id) could not be recorded: its key conflicts, but no earlier receipt has it")
            }
            return earlier.sha256 == receipt.sha256 && earlier.size == receipt.size ? .replay(earlier) : .conflict(earlier)
        }
        guard let attempt else { return nil }
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
}

/// A receipt, its `received` hook events (one for each hook that wants them) and its audit
/// event in one statement, committed on its own: the audit event is appended last, so the
/// chain's head is locked only for the rest of this statement and its commit, with no
/// round trip to the node inside that lock. Gives one row if the receipt was inserted,
/// none if its idempotency key was taken or, given a partner generation ($22), if the
/// generation is no longer that one.
struct ReceiptCommitStatement: PostgresPreparedStatement {
    static let sql = """
        WITH new_receipt AS (
            INSERT INTO receipt (id, partner, filename, stored_name, size, sha256, received_at, idempotency_key, signature)
            SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
            WHERE $22::int8 IS NULL OR $22 = (SELECT value FROM partner_generation WHERE id = 1)
            ON CONFLICT (partner, idempotency_key) DO NOTHING
            RETURNING id
        ), hook_events AS (
            INSERT INTO hook_event (hook_id, event, subject_id, partner, filename, size, sha256, stored_name, occurred_at, next_attempt_at)
            SELECT hook.id, 'received', new_receipt.id, $2, $3, $5, $6, $4, $7, $7
            FROM new_receipt JOIN hook ON hook.event = 'received' AND (hook.partner IS NULL OR hook.partner = $2)
        )
        SELECT wharf_append_audit($10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) FROM new_receipt
        """
    static let bindingDataTypes: [PostgresDataType] =
        [.text, .text, .text, .text, .int8, .text, .timestamptz, .text, .text] + AppendAuditStatement.argumentTypes + [.int8]
    typealias Row = Int64

    let receipt: Receipt
    let event: AuditEvent
    /// The partner generation the receipt holds to, if any.
    let partners: Int64?

    func makeBindings() -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(receipt.id)
        bindings.append(receipt.partner)
        bindings.append(receipt.filename)
        bindings.append(receipt.storedName)
        bindings.append(receipt.size)
        bindings.append(receipt.sha256)
        bindings.append(receipt.receivedAt.roundedToMilliseconds)
        bindings.append(receipt.idempotencyKey)
        bindings.append(receipt.signature)
        AppendAuditStatement.append(event, to: &bindings)
        bindings.append(partners)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }
}
