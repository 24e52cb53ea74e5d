import Foundation
import PostgresNIO
import WharfCore

extension PostgresStore {
    /// Records `attempt` and moves the transfer as `outcome` says, in one statement
    /// (`FinishStatement`), then runs `install` (the file's move to `sent/`); a refused
    /// transition throws why and writes nothing.
    @discardableResult
    public func finish(
        _ transfer: Transfer, attempt: DeliveryAttempt, outcome: AttemptOutcome,
        claimingNext next: (now: Date, defaultPerPartner: Int)?, install: () throws -> Void
    ) throws(WharfError) -> TransferClaim? {
        // No claim for the slot this frees (`claimingNext`): the claim lock would be held
        // through this commit, serializing every node's deliveries behind each other's.
        // The worker's next round claims for it, several at once.
        let statement = FinishStatement(
            transfer: transfer, attempt: attempt, outcome: outcome, node: node,
            event: AuditEvent.delivery(transfer, outcome: outcome, status: attempt.httpStatus)
        )
        let node = node
        try CommitThenInstall.run(
            commit: { () throws(WharfError) in
                try withConnection { connection in
                    var finished = false
                    for try await _ in try await connection.execute(statement, logger: Self.quiet) { finished = true }
                    if !finished { try await Self.refuse(statement.transition, of: transfer.id, node: node, connection) }
                }
            },
            install: { _ in try install() },
            withdraw: { _ in }
        )
        return nil
    }
}

/// An attempt's end in one statement, committed on its own: the transfer's transition
/// (guarded by its sources and this node's lease), the attempt's row, the hook events of
/// a `delivered` or `dead` transfer, and the audit event, appended last so the chain's head
/// is locked only for the rest of the statement and its commit. Every part reads the
/// transition's `RETURNING`, so a transition the guard refuses writes nothing at all, and
/// the statement gives no row (`PostgresStore.refuse` then says why).
struct FinishStatement: PostgresPreparedStatement {
    static let sql = """
        WITH finished AS (
            UPDATE transfer SET
                state = $3, lease_owner = NULL, lease_expires_at = NULL,
                attempts = attempts + 1, attempts_since_queued = attempts_since_queued + 1,
                next_attempt_at = $5, last_error = $6,
                receipt = CASE WHEN $3 = 'delivered' THEN $7 ELSE receipt END,
                receipt_signature = CASE WHEN $3 = 'delivered' THEN $8 ELSE receipt_signature END,
                delivered_at = CASE WHEN $3 = 'delivered' THEN $9 ELSE delivered_at END,
                upload_location = CASE WHEN $10 THEN $11 ELSE upload_location END
            WHERE id = $1 AND state = ANY($4) AND (state <> 'sending' OR lease_owner = $2)
            RETURNING id, partner, filename, size, sha256, last_error
        ), attempt AS (
            INSERT INTO delivery_attempt (transfer_id, number, started_at, duration_seconds, curl_code, http_status, bytes_sent, error)
            SELECT id, $12, $13, $14, $15, $16, $17, $18 FROM finished
        ), hook_events AS (
            INSERT INTO hook_event (hook_id, event, subject_id, partner, filename, size, sha256, reason, occurred_at, next_attempt_at)
            SELECT hook.id, hook.event, finished.id, finished.partner, finished.filename, finished.size, finished.sha256,
                   finished.last_error, $19, $19
            FROM finished JOIN hook ON hook.event = $3 AND $3 IN ('delivered', 'dead')
                                   AND (hook.partner IS NULL OR hook.partner = finished.partner)
        )
        SELECT wharf_append_audit($20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31) FROM finished
        """
    static let bindingDataTypes: [PostgresDataType] = [
        .text, .text, .text, .textArray, .timestamptz, .text, .text, .text, .timestamptz, .bool, .text,
        .int4, .timestamptz, .float8, .int4, .int4, .int8, .text, .timestamptz,
    ] + AppendAuditStatement.argumentTypes
    typealias Row = Int64

    let transfer: Transfer
    let attempt: DeliveryAttempt
    let outcome: AttemptOutcome
    let node: String
    let event: AuditEvent

    var transition: Transfer.Transition { outcome.transition }

    func makeBindings() -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(transfer.id)
        bindings.append(node)
        bindings.append(transition.target.rawValue)
        bindings.append(transition.sources.map(\.rawValue))
        // What the outcome sets: when it is due next, why, and the receipt.
        var (next, reason, receipt, signature, deliveredAt): (Date?, String?, String?, String?, Date?) = (nil, nil, nil, nil, nil)
        switch outcome {
        case .delivered(let delivered, let jws):
            (receipt, signature) = (delivered, jws)
            deliveredAt = attempt.startedAt.addingTimeInterval(attempt.duration).roundedToMilliseconds
        case .retry(let date, let why):
            (next, reason) = (date.roundedToMilliseconds, why)
        case .dead(let why):
            reason = why
        }
        bindings.append(next)
        bindings.append(reason)
        bindings.append(receipt)
        bindings.append(signature)
        bindings.append(deliveredAt)
        bindings.append(attempt.uploadLocation != transfer.uploadLocation)
        bindings.append(attempt.uploadLocation)
        bindings.append(Int32(clamping: attempt.number))
        bindings.append(attempt.startedAt.roundedToMilliseconds)
        bindings.append(attempt.duration)
        bindings.append(attempt.curlCode.map { Int32(clamping: $0) })
        bindings.append(attempt.httpStatus.map { Int32(clamping: $0) })
        bindings.append(attempt.bytesSent)
        bindings.append(attempt.error)
        bindings.append(Date().roundedToMilliseconds)
        AppendAuditStatement.append(event, to: &bindings)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }
}
