import Foundation
import GRDB
import WharfCore

extension Registry: HookQueue {
    /// Records a hook and returns it with its id. `partner`, when given, must exist.
    public func addHook(
        event: Hook.Event, partner: PartnerName?, action: Hook.Action, retry: RetryPolicy, timeout: Double
    ) throws(WharfError) -> Hook {
        try write { db in
            if let partner, try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM partner WHERE name = ?)", arguments: [partner.rawValue]) != true {
                throw WharfError.unknownPartner(partner.rawValue)
            }
            let (exec, url, caFile): (String?, String?, String?) = switch action {
            case .exec(let words): (String(decoding: try JSONEncoder().encode(words), as: UTF8.self), nil, nil)
            case .url(let url, let caFile): (nil, url, caFile)
            }
            try db.execute(
                sql: """
                    INSERT INTO hook (event, partner, exec, url, ca_file, max_attempts, retry_initial_seconds, timeout_seconds, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [event.rawValue, partner?.rawValue, exec, url, caFile, retry.maxAttempts, retry.initialDelay, timeout, Date().stored]
            )
            return Hook(id: db.lastInsertedRowID, event: event, partner: partner?.rawValue, action: action, retry: retry, timeout: timeout)
        }
    }

    /// Removes a hook and its events, those still queued included.
    public func removeHook(_ id: Int64) throws(WharfError) {
        try write { db in
            try db.execute(sql: "DELETE FROM hook WHERE id = ?", arguments: [id])
            guard db.changesCount > 0 else {
                throw WharfError(.notFound, "no hook with id \(id)", fix: "`wharf hook list` shows the hooks")
            }
        }
    }

    public func hooks() throws(WharfError) -> [Hook] {
        try read { db in try Row.fetchAll(db, sql: "SELECT * FROM hook ORDER BY id").map { try Self.hook(from: $0, prefix: "") } }
    }

    /// Hook events, newest first: of one hook or all, one partner or all, in one state or any.
    public func hookEvents(
        hook: Int64? = nil, partner: String? = nil, state: HookEvent.State? = nil, limit: Int = 100
    ) throws(WharfError) -> [HookEvent] {
        try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM hook_event WHERE (?1 IS NULL OR hook_id = ?1) AND (?2 IS NULL OR partner = ?2)
                      AND (?3 IS NULL OR state = ?3)
                    ORDER BY id DESC LIMIT ?4
                    """,
                arguments: [hook, partner, state?.rawValue, limit]
            ).map(Self.hookEvent(from:))
        }
    }

    /// How many hook events are in each state.
    public func hookEventCounts() throws(WharfError) -> [HookEvent.State: Int] {
        try read { db in
            var counts: [HookEvent.State: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT state, count(*) AS n FROM hook_event GROUP BY state") {
                if let state = HookEvent.State(rawValue: row["state"]) { counts[state] = row["n"] }
            }
            return counts
        }
    }

    /// See `HookQueue.claimHookEvents`.
    public func claimHookEvents(now: Date, margin: Double, limit: Int) throws(WharfError) -> [(HookEvent, Hook)] {
        let due = "SELECT EXISTS (SELECT 1 FROM hook_event WHERE state = 'pending' AND next_attempt_at <= ?)"
        // Read first: most looks find nothing, and then write nothing.
        guard try read({ db in try Bool.fetchOne(db.cachedStatement(sql: due), arguments: [now.stored]) }) == true else { return [] }
        // A lease lost in a crash makes its event due at once, which is what the lease is for.
        return try write(durable: false) { db in
            let rows = try Row.fetchAll(
                db.cachedStatement(sql: """
                    SELECT hook_event.*, hook.partner AS hook_partner, hook.exec AS hook_exec, hook.url AS hook_url,
                           hook.ca_file AS hook_ca_file, hook.max_attempts AS hook_max_attempts,
                           hook.retry_initial_seconds AS hook_retry_initial_seconds, hook.timeout_seconds AS hook_timeout_seconds
                    FROM hook_event JOIN hook ON hook.id = hook_event.hook_id
                    WHERE hook_event.state = 'pending' AND hook_event.next_attempt_at <= ?
                    ORDER BY hook_event.next_attempt_at, hook_event.id LIMIT ?
                    """),
                arguments: [now.stored, limit]
            )
            var claimed: [(HookEvent, Hook)] = []
            for row in rows {
                var event = Self.hookEvent(from: row)
                let hook = try Self.hook(from: row, prefix: "hook_", id: event.hookID, event: event.event)
                let leaseUntil = now.addingTimeInterval(hook.timeout + margin)
                try db.cachedStatement(sql: "UPDATE hook_event SET next_attempt_at = ? WHERE id = ?").execute(arguments: [leaseUntil.stored, event.id])
                event.nextAttemptAt = leaseUntil
                claimed.append((event, hook))
            }
            return claimed
        }
    }

    /// See `HookQueue.finishHookEvent`.
    public func finishHookEvent(_ id: Int64, outcome: HookOutcome, at now: Date) throws(WharfError) {
        try write { db in
            switch outcome {
            case .done:
                try db.execute(
                    sql: "UPDATE hook_event SET state = 'done', attempts = attempts + 1, next_attempt_at = NULL, last_error = NULL, finished_at = ? WHERE id = ?",
                    arguments: [now.stored, id]
                )
            case .retry(let date, let error):
                try db.execute(
                    sql: "UPDATE hook_event SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ? AND state = 'pending'",
                    arguments: [date.stored, error, id]
                )
            case .failed(let error):
                try db.execute(
                    sql: "UPDATE hook_event SET state = 'failed', attempts = attempts + 1, next_attempt_at = NULL, last_error = ?, finished_at = ? WHERE id = ?",
                    arguments: [error, now.stored, id]
                )
            }
        }
    }

    /// Queues a `received` event of `receipt` for each hook that wants one, in the receipt's
    /// transaction.
    static func queueHookEvents(received receipt: Receipt, _ db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO hook_event (hook_id, event, subject_id, partner, filename, size, sha256, stored_name, occurred_at, next_attempt_at)
            SELECT id, 'received', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7 FROM hook
            WHERE event = 'received' AND (partner IS NULL OR partner = ?2)
            """).execute(arguments: [receipt.id, receipt.partner, receipt.filename, receipt.size, receipt.sha256, receipt.storedName, receipt.receivedAt.stored])
    }

    /// Queues `event` of transfer `id` (just moved to `delivered` or `dead`, its reason in
    /// `last_error`) for each hook that wants one, in the transition's transaction.
    static func queueHookEvents(_ event: Hook.Event, transfer id: String, _ db: Database) throws {
        let now = Date().stored
        try db.cachedStatement(sql: """
            INSERT INTO hook_event (hook_id, event, subject_id, partner, filename, size, sha256, reason, occurred_at, next_attempt_at)
            SELECT hook.id, hook.event, transfer.id, transfer.partner, transfer.filename, transfer.size, transfer.sha256,
                   transfer.last_error, ?1, ?1
            FROM transfer JOIN hook ON hook.event = ?2 AND (hook.partner IS NULL OR hook.partner = transfer.partner)
            WHERE transfer.id = ?3
            """).execute(arguments: [now, event.rawValue, id])
    }

    private static func hook(from row: Row, prefix: String, id: Int64? = nil, event: Hook.Event? = nil) throws -> Hook {
        let action: Hook.Action
        if let exec: String = row[prefix + "exec"] {
            action = .exec(try JSONDecoder().decode([String].self, from: Data(exec.utf8)))
        } else {
            action = .url(row[prefix + "url"], caFile: row[prefix + "ca_file"])
        }
        var retry = Hook.defaultRetry
        retry.maxAttempts = row[prefix + "max_attempts"]
        retry.initialDelay = row[prefix + "retry_initial_seconds"]
        retry.maximumDelay = max(retry.maximumDelay, retry.initialDelay)
        return Hook(
            id: id ?? row["id"], event: event ?? Hook.Event(rawValue: row["event"]) ?? .received, partner: row[prefix + "partner"],
            action: action, retry: retry, timeout: row[prefix + "timeout_seconds"]
        )
    }

    private static func hookEvent(from row: Row) -> HookEvent {
        HookEvent(
            id: row["id"], hookID: row["hook_id"], event: Hook.Event(rawValue: row["event"]) ?? .received, subject: row["subject_id"],
            partner: row["partner"], filename: row["filename"], size: row["size"], sha256: row["sha256"],
            storedName: row["stored_name"], reason: row["reason"], occurredAt: row.date("occurred_at"),
            state: HookEvent.State(rawValue: row["state"]) ?? .pending, attempts: row["attempts"],
            nextAttemptAt: row.optionalDate("next_attempt_at"), lastError: row["last_error"]
        )
    }
}
