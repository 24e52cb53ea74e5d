import Foundation
import PostgresNIO
import WharfCore

/// Hook events on the shared registry: any node dispatches them, each claimed with
/// `FOR UPDATE SKIP LOCKED` and leased for its hook's timeout, so two nodes never take the
/// same one at once and one a dead node held is dispatched again when its lease runs out.
extension PostgresStore: HookQueue {
    public func claimHookEvents(now: Date, margin: Double, limit: Int) throws(WharfError) -> [(HookEvent, Hook)] {
        let now = now.roundedToMilliseconds
        return try transaction { connection in
            let rows = try await connection.query("""
                WITH due AS (
                    SELECT id FROM hook_event WHERE state = 'pending' AND next_attempt_at <= \(now)
                    ORDER BY next_attempt_at, id LIMIT \(limit)
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE hook_event
                SET next_attempt_at = date_trunc('milliseconds', \(now)::timestamptz + (hook.timeout_seconds + \(margin)) * interval '1 second')
                FROM due, hook
                WHERE hook_event.id = due.id AND hook.id = hook_event.hook_id
                RETURNING hook_event.*, hook.exec AS hook_exec, hook.url AS hook_url, hook.ca_file AS hook_ca_file,
                          hook.max_attempts AS hook_max_attempts, hook.retry_initial_seconds AS hook_retry_initial_seconds,
                          hook.timeout_seconds AS hook_timeout_seconds, hook.partner AS hook_partner
                """, logger: Self.quiet)
            var claimed: [(HookEvent, Hook)] = []
            for try await row in rows { claimed.append(try Self.hookEvent(from: row)) }
            return claimed.sorted { ($0.0.nextAttemptAt ?? now, $0.0.id) < ($1.0.nextAttemptAt ?? now, $1.0.id) }
        }
    }

    public func finishHookEvent(_ id: Int64, outcome: HookOutcome, at now: Date) throws(WharfError) {
        let now = now.roundedToMilliseconds
        try withConnection { connection in
            switch outcome {
            case .done:
                try await connection.run("""
                    UPDATE hook_event SET state = 'done', attempts = attempts + 1, next_attempt_at = NULL, last_error = NULL, finished_at = \(now)
                    WHERE id = \(id)
                    """)
            case .retry(let date, let error):
                try await connection.run("""
                    UPDATE hook_event SET attempts = attempts + 1, next_attempt_at = \(date.roundedToMilliseconds), last_error = \(error)
                    WHERE id = \(id) AND state = 'pending'
                    """)
            case .failed(let error):
                try await connection.run("""
                    UPDATE hook_event SET state = 'failed', attempts = attempts + 1, next_attempt_at = NULL, last_error = \(error),
                                          finished_at = \(now)
                    WHERE id = \(id)
                    """)
            }
        }
    }

    static func hookEvent(from row: PostgresRow) throws -> (HookEvent, Hook) {
        let row = row.makeRandomAccess()
        let event = HookEvent(
            id: try row["id"].decode(Int64.self), hookID: try row["hook_id"].decode(Int64.self),
            event: Hook.Event(rawValue: try row["event"].decode(String.self)) ?? .received,
            subject: try row["subject_id"].decode(String.self), partner: try row["partner"].decode(String.self),
            filename: try row["filename"].decode(String.self), size: try row["size"].decode(Int64.self),
            sha256: try row["sha256"].decode(String.self), storedName: try row["stored_name"].decode(String?.self),
            reason: try row["reason"].decode(String?.self), occurredAt: try row["occurred_at"].decode(Millis.self).date,
            state: HookEvent.State(rawValue: try row["state"].decode(String.self)) ?? .pending,
            attempts: try row["attempts"].decode(Int.self), nextAttemptAt: try row["next_attempt_at"].decode(Millis?.self)?.date,
            lastError: try row["last_error"].decode(String?.self)
        )
        let action: Hook.Action
        if let exec = try row["hook_exec"].decode(String?.self) {
            action = .exec(try JSONDecoder().decode([String].self, from: Data(exec.utf8)))
        } else {
            action = .url(try row["hook_url"].decode(String.self), caFile: try row["hook_ca_file"].decode(String?.self))
        }
        var retry = Hook.defaultRetry
        retry.maxAttempts = try row["hook_max_attempts"].decode(Int.self)
        retry.initialDelay = try row["hook_retry_initial_seconds"].decode(Double.self)
        retry.maximumDelay = max(retry.maximumDelay, retry.initialDelay)
        let hook = Hook(
            id: event.hookID, event: event.event, partner: try row["hook_partner"].decode(String?.self), action: action, retry: retry,
            timeout: try row["hook_timeout_seconds"].decode(Double.self)
        )
        return (event, hook)
    }
}
