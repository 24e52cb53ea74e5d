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
        // In one statement with the receipts other threads of this node commit meanwhile
        // (`ReceiptCommitStatement`): one commit, and the audit chain's head locked once.
        let pending = ReceiptCommitStatement.Pending(receipt: receipt, event: committedEvent, partners: partners)
        let attempt: ReceiptCommit?
        if try receiptCommits.make(pending, commitTogether) {
            attempt = .committed(receipt)
        } else {
            // Nothing inserted: the partners changed, or the key was used before.
            attempt = try withConnection { connection -> ReceiptCommit? in
                if let partners, try await Self.partnerGeneration(connection) != partners { return nil }
                guard let key = receipt.idempotencyKey,
                      let earlier = try await Self.receipts(connection, "SELECT * FROM receipt WHERE partner = \(receipt.partner) AND idempotency_key = \(key)").first
                else {
                    throw WharfError(.conflict, "receipt \(receipt.id) could not be recorded: its key conflicts, but no earlier receipt has it")
                }
                return earlier.sha256 == receipt.sha256 && earlier.size == receipt.size ? .replay(earlier) : .conflict(earlier)
            }
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

    /// Inserts `pending` receipts in one statement; for each, whether it was inserted.
    func commitTogether(_ pending: [ReceiptCommitStatement.Pending]) throws(WharfError) -> [Bool] {
        let statement = ReceiptCommitStatement(pending: pending)
        let inserted = try withConnection { connection -> Set<String> in
            var inserted: Set<String> = []
            for try await id in try await connection.execute(statement, logger: Self.quiet) { inserted.insert(id) }
            return inserted
        }
        return pending.map { inserted.contains($0.receipt.id) }
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

/// Several receipts, each with its `received` hook events (one for each hook that wants
/// them) and its audit event, in one statement committed on its own, with no round trip
/// to the node inside the lock on the audit chain's head. That lock is taken first (`head`),
/// before any key is inserted: two nodes' statements inserting the same idempotency keys
/// in other orders would otherwise each hold a key the other waits for, or one the head's
/// holder waits for, and PostgreSQL would abort one as deadlocked. Gives the id of each
/// receipt inserted; none for one whose idempotency key was taken (by an earlier receipt
/// or one before it in this statement) or, given a partner generation, if the generation
/// is no longer that one.
///
/// The receipts come as one array per column, row by row.
struct ReceiptCommitStatement: PostgresPreparedStatement {
    static let sql = """
        WITH head AS (
            SELECT id FROM audit_head FOR UPDATE
        ), input AS (
            SELECT * FROM unnest(
                $1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::timestamptz[], $8::text[],
                $9::text[], $10::int8[], $11::timestamptz[], $12::text[], $13::text[], $14::int8[], $15::text[], $16::text[],
                $17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::bytea[]
            ) WITH ORDINALITY AS input(
                id, partner, filename, stored_name, size, sha256, received_at, idempotency_key, signature, partners,
                event_at, event_kind, event_outcome, event_status, event_partner, event_subject, event_fingerprint,
                event_remote_address, event_detail, event_actor, event_command, event_tail, ordinal
            )
        ), new_receipt AS (
            INSERT INTO receipt (id, partner, filename, stored_name, size, sha256, received_at, idempotency_key, signature)
            SELECT input.id, input.partner, input.filename, input.stored_name, input.size, input.sha256, input.received_at,
                   input.idempotency_key, input.signature
            FROM input
            WHERE EXISTS (SELECT FROM head)
              AND (input.partners IS NULL OR input.partners = (SELECT value FROM partner_generation WHERE id = 1))
            ORDER BY input.ordinal
            ON CONFLICT (partner, idempotency_key) DO NOTHING
            RETURNING id
        ), hook_events AS (
            INSERT INTO hook_event (hook_id, event, subject_id, partner, filename, size, sha256, stored_name, occurred_at, next_attempt_at)
            SELECT hook.id, 'received', new_receipt.id, input.partner, input.filename, input.size, input.sha256,
                   input.stored_name, input.received_at, input.received_at
            FROM new_receipt JOIN input ON input.id = new_receipt.id
                JOIN hook ON hook.event = 'received' AND (hook.partner IS NULL OR hook.partner = input.partner)
        )
        SELECT new_receipt.id, wharf_append_audit(
            input.event_at, input.event_kind, input.event_outcome, input.event_status, input.event_partner, input.event_subject,
            input.event_fingerprint, input.event_remote_address, input.event_detail, input.event_actor, input.event_command,
            input.event_tail
        )
        FROM new_receipt JOIN input ON input.id = new_receipt.id
        """
    static let bindingDataTypes: [PostgresDataType] =
        [.textArray, .textArray, .textArray, .textArray, .int8Array, .textArray, .timestamptzArray, .textArray, .textArray, .int8Array]
        + AppendAuditStatement.columnTypes
    typealias Row = String

    /// One receipt to commit.
    struct Pending: Sendable {
        let receipt: Receipt
        let event: AuditEvent
        /// The partner generation the receipt holds to, if any.
        let partners: Int64?
    }

    let pending: [Pending]

    func makeBindings() -> PostgresBindings {
        var bindings = PostgresBindings()
        let receipts = pending.map(\.receipt)
        bindings.append(receipts.map(\.id))
        bindings.append(receipts.map(\.partner))
        bindings.append(receipts.map(\.filename))
        bindings.append(receipts.map(\.storedName))
        bindings.append(receipts.map(\.size))
        bindings.append(receipts.map(\.sha256))
        bindings.append(receipts.map(\.receivedAt.roundedToMilliseconds))
        bindings.append(NullableArray(receipts.map(\.idempotencyKey)))
        bindings.append(NullableArray(receipts.map(\.signature)))
        bindings.append(NullableArray(pending.map(\.partners)))
        AppendAuditStatement.appendColumns(pending.map(\.event), to: &bindings)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> String { try row.decode((String, Int64).self).0 }
}
