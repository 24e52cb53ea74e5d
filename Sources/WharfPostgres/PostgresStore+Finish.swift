import Foundation
import PostgresNIO
import WharfCore

extension PostgresStore {
    /// Records `attempt` and moves the transfer as `outcome` says, in one statement with
    /// the finishes other threads of this node make at the same time (`FinishStatement`),
    /// then runs `install` (the file's move to `sent/`); a refused transition throws why and
    /// writes nothing.
    @discardableResult
    public func finish(
        _ transfer: Transfer, attempt: DeliveryAttempt, outcome: AttemptOutcome,
        claimingNext next: (now: Date, defaultPerPartner: Int)?, install: () throws -> Void
    ) throws(WharfError) -> TransferClaim? {
        // No claim for the slot this frees (`claimingNext`): the claim lock would be held
        // through this commit, serializing every node's deliveries behind each other's.
        // The worker's next round claims for it, several at once.
        let finish = FinishStatement.Finish(
            transfer: transfer, attempt: attempt, outcome: outcome,
            event: AuditEvent.delivery(transfer, outcome: outcome, status: attempt.httpStatus)
        )
        let node = node
        try CommitThenInstall.run(
            commit: { () throws(WharfError) in
                guard try finishes.make(finish, finishTogether) else {
                    try withConnection { connection in try await Self.refuse(finish.transition, of: transfer.id, node: node, connection) }
                }
            },
            install: { _ in try install() },
            withdraw: { _ in }
        )
        return nil
    }

    /// Runs `finishes` as one statement; for each, whether its transition was made (a
    /// refused one wrote nothing).
    func finishTogether(_ finishes: [FinishStatement.Finish]) throws(WharfError) -> [Bool] {
        let statement = FinishStatement(finishes: finishes, node: node, at: Date())
        let made = try withConnection { connection -> Set<String> in
            var made: Set<String> = []
            for try await id in try await connection.execute(statement, logger: Self.quiet) { made.insert(id) }
            return made
        }
        return finishes.map { made.contains($0.transfer.id) }
    }
}

/// The end of several attempts in one statement, committed on its own: each transfer's
/// transition (guarded by its sources and this node's lease), the attempt's row, the hook
/// events of a `delivered` or `dead` transfer, and the audit event, appended last so the
/// chain's head is locked only for the rest of the statement and its commit. Every part
/// reads the transitions' `RETURNING`, so a transition the guard refuses writes nothing,
/// and the statement gives no row for it (`PostgresStore.refuse` then says why); the
/// others are not held back by it.
///
/// The attempts come as one array per column, row by row, in the order of `finishes`.
struct FinishStatement: PostgresPreparedStatement {
    static let sql = """
        WITH input AS (
            SELECT * FROM unnest(
                $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::timestamptz[],
                $11::bool[], $12::text[], $13::int4[], $14::timestamptz[], $15::float8[], $16::int4[], $17::int4[], $18::int8[],
                $19::text[], $20::timestamptz[], $21::text[], $22::text[], $23::int8[], $24::text[], $25::text[], $26::text[],
                $27::text[], $28::text[], $29::text[], $30::text[], $31::bytea[]
            ) WITH ORDINALITY AS input(
                id, target, sources, next_attempt_at, reason, receipt, receipt_signature, delivered_at,
                moves_location, upload_location, number, started_at, duration_seconds, curl_code, http_status, bytes_sent,
                error, event_at, event_kind, event_outcome, event_status, event_partner, event_subject, event_fingerprint,
                event_remote_address, event_detail, event_actor, event_command, event_tail, ordinal
            )
        ), finished AS (
            UPDATE transfer SET
                state = input.target, lease_owner = NULL, lease_expires_at = NULL,
                attempts = transfer.attempts + 1, attempts_since_queued = transfer.attempts_since_queued + 1,
                next_attempt_at = input.next_attempt_at, last_error = input.reason,
                receipt = CASE WHEN input.target = 'delivered' THEN input.receipt ELSE transfer.receipt END,
                receipt_signature = CASE WHEN input.target = 'delivered' THEN input.receipt_signature ELSE transfer.receipt_signature END,
                delivered_at = CASE WHEN input.target = 'delivered' THEN input.delivered_at ELSE transfer.delivered_at END,
                upload_location = CASE WHEN input.moves_location THEN input.upload_location ELSE transfer.upload_location END
            FROM input
            WHERE transfer.id = input.id AND transfer.state = ANY(string_to_array(input.sources, ','))
              AND (transfer.state <> 'sending' OR transfer.lease_owner = $1)
            RETURNING transfer.id, transfer.partner, transfer.filename, transfer.size, transfer.sha256, transfer.last_error,
                      input.ordinal
        ), attempt AS (
            INSERT INTO delivery_attempt (transfer_id, number, started_at, duration_seconds, curl_code, http_status, bytes_sent, error)
            SELECT finished.id, input.number, input.started_at, input.duration_seconds, input.curl_code, input.http_status,
                   input.bytes_sent, input.error
            FROM finished JOIN input ON input.ordinal = finished.ordinal
        ), hook_events AS (
            INSERT INTO hook_event (hook_id, event, subject_id, partner, filename, size, sha256, reason, occurred_at, next_attempt_at)
            SELECT hook.id, hook.event, finished.id, finished.partner, finished.filename, finished.size, finished.sha256,
                   finished.last_error, $2, $2
            FROM finished JOIN input ON input.ordinal = finished.ordinal
                JOIN hook ON hook.event = input.target AND input.target IN ('delivered', 'dead')
                         AND (hook.partner IS NULL OR hook.partner = finished.partner)
        )
        SELECT finished.id, wharf_append_audit(
            input.event_at, input.event_kind, input.event_outcome, input.event_status, input.event_partner, input.event_subject,
            input.event_fingerprint, input.event_remote_address, input.event_detail, input.event_actor, input.event_command,
            input.event_tail
        )
        FROM finished JOIN input ON input.ordinal = finished.ordinal
        """
    static let bindingDataTypes: [PostgresDataType] = [
        .text, .timestamptz, .textArray, .textArray, .textArray, .timestamptzArray, .textArray, .textArray, .textArray,
        .timestamptzArray, .boolArray, .textArray, .int4Array, .timestamptzArray, .float8Array, .int4Array, .int4Array,
        .int8Array, .textArray,
    ] + AppendAuditStatement.columnTypes
    typealias Row = String

    /// One attempt's end.
    struct Finish: Sendable {
        let transfer: Transfer
        let attempt: DeliveryAttempt
        let outcome: AttemptOutcome
        let event: AuditEvent

        var transition: Transfer.Transition { outcome.transition }

        /// What the outcome sets: when the transfer is due next, why, and the receipt.
        var sets: Sets {
            switch outcome {
            case .delivered(let receipt, let signature):
                let deliveredAt = attempt.startedAt.addingTimeInterval(attempt.duration).roundedToMilliseconds
                return Sets(receipt: receipt, signature: signature, deliveredAt: deliveredAt)
            case .retry(let date, let reason):
                return Sets(nextAttemptAt: date.roundedToMilliseconds, reason: reason)
            case .dead(let reason):
                return Sets(reason: reason)
            }
        }
    }

    struct Sets {
        var nextAttemptAt: Date?
        var reason: String?
        var receipt: String?
        var signature: String?
        var deliveredAt: Date?
    }

    let finishes: [FinishStatement.Finish]
    let node: String
    /// When the hook events were raised.
    let at: Date

    func makeBindings() -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(node)
        bindings.append(at.roundedToMilliseconds)
        bindings.append(finishes.map(\.transfer.id))
        bindings.append(finishes.map(\.transition.target.rawValue))
        bindings.append(finishes.map { $0.transition.sources.map(\.rawValue).joined(separator: ",") })
        let sets = finishes.map(\.sets)
        bindings.append(NullableArray(sets.map(\.nextAttemptAt)))
        bindings.append(NullableArray(sets.map(\.reason)))
        bindings.append(NullableArray(sets.map(\.receipt)))
        bindings.append(NullableArray(sets.map(\.signature)))
        bindings.append(NullableArray(sets.map(\.deliveredAt)))
        let attempts = finishes.map(\.attempt)
        bindings.append(finishes.map { $0.attempt.uploadLocation != $0.transfer.uploadLocation })
        bindings.append(NullableArray(attempts.map(\.uploadLocation)))
        bindings.append(attempts.map { Int32(clamping: $0.number) })
        bindings.append(attempts.map(\.startedAt.roundedToMilliseconds))
        bindings.append(attempts.map(\.duration))
        bindings.append(NullableArray(attempts.map { $0.curlCode.map { Int32(clamping: $0) } }))
        bindings.append(NullableArray(attempts.map { $0.httpStatus.map { Int32(clamping: $0) } }))
        bindings.append(attempts.map(\.bytesSent))
        bindings.append(NullableArray(attempts.map(\.error)))
        AppendAuditStatement.appendColumns(finishes.map(\.event), to: &bindings)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> String { try row.decode((String, Int64).self).0 }
}
