import Foundation
import PostgresNIO
import WharfCore

/// What the operator's commands and a gateway's upkeep read and change on the shared
/// registry: the same answers as SQLite's, so every command works on either.
extension PostgresStore: RegistryAdministration {
    public func ping() throws(WharfError) {
        try withConnection { connection in try await connection.run("SELECT 1") }
    }

    /// PostgreSQL checks its own pages; this checks that it answers.
    public func checkIntegrity() throws(WharfError) {
        try ping()
    }

    // MARK: Transfers

    public func transfers(state: Transfer.State?, partner: String?, limit: Int) throws(WharfError) -> [Transfer] {
        let state = state?.rawValue
        return try withConnection { connection in
            var transfers: [Transfer] = []
            let rows = try await connection.query("""
                SELECT * FROM transfer WHERE (\(state)::text IS NULL OR state = \(state)) AND (\(partner)::text IS NULL OR partner = \(partner))
                ORDER BY created_at DESC, id DESC LIMIT \(limit)
                """, logger: Self.quiet)
            for try await row in rows { transfers.append(try Self.transfer(from: row)) }
            return transfers
        }
    }

    public func attempts(of transferID: String) throws(WharfError) -> [DeliveryAttempt] {
        try withConnection { connection in
            var attempts: [DeliveryAttempt] = []
            let rows = try await connection.query("""
                SELECT number, started_at, duration_seconds, curl_code, http_status, bytes_sent, error, remote_address
                FROM delivery_attempt WHERE transfer_id = \(transferID) ORDER BY number
                """, logger: Self.quiet)
            for try await (number, started, duration, curl, http, bytes, error, remote)
                in rows.decode((Int, Millis, Double, Int?, Int?, Int64, String?, String?).self) {
                attempts.append(DeliveryAttempt(
                    transferID: transferID, number: number, startedAt: started.date, duration: duration, curlCode: curl,
                    httpStatus: http, bytesSent: bytes, error: error, remoteAddress: remote
                ))
            }
            return attempts
        }
    }

    public func transferCounts() throws(WharfError) -> [Transfer.State: Int] {
        var counts: [Transfer.State: Int] = [:]
        for (_, byState) in try transferCountsByPartner() {
            for (state, count) in byState { counts[state, default: 0] += count }
        }
        return counts
    }

    public func transferCountsByPartner() throws(WharfError) -> [String: [Transfer.State: Int]] {
        try withConnection { connection in
            var counts: [String: [Transfer.State: Int]] = [:]
            let rows = try await connection.query("SELECT partner, state, count(*) FROM transfer GROUP BY partner, state", logger: Self.quiet)
            for try await (partner, state, count) in rows.decode((String, String, Int).self) {
                if let state = Transfer.State(rawValue: state) { counts[partner, default: [:]][state] = count }
            }
            return counts
        }
    }

    public func oldestWaitingByPartner() throws(WharfError) -> [String: Date] {
        try withConnection { connection in
            var oldest: [String: Date] = [:]
            let rows = try await connection.query(
                "SELECT partner, min(queued_at) FROM transfer WHERE state IN ('queued', 'retrying') GROUP BY partner", logger: Self.quiet
            )
            for try await (partner, at) in rows.decode((String, Millis).self) { oldest[partner] = at.date }
            return oldest
        }
    }

    public func oldestWaitingTransfer() throws(WharfError) -> Transfer? {
        try withConnection { connection in
            let rows = try await connection.query(
                "SELECT * FROM transfer WHERE state IN ('queued', 'retrying') ORDER BY queued_at, id LIMIT 1", logger: Self.quiet
            )
            var found: Transfer?
            for try await row in rows { found = try Self.transfer(from: row) }
            return found
        }
    }

    public func lastUploads() throws(WharfError) -> [String: Date] {
        try withConnection { connection in
            var last: [String: Date] = [:]
            for try await (partner, at) in try await connection.query(
                "SELECT partner, max(received_at) FROM receipt GROUP BY partner", logger: Self.quiet
            ).decode((String, Millis).self) {
                last[partner] = at.date
            }
            return last
        }
    }

    // MARK: Schedules

    public func schedules() throws(WharfError) -> [Schedule] {
        try withConnection { connection in
            var schedules: [Schedule] = []
            let rows = try await connection.query(
                "SELECT id, partner, cron, source_directory, pattern, keep, next_run_at FROM schedule ORDER BY id", logger: Self.quiet
            )
            for try await (id, partner, cron, directory, pattern, keep, next) in rows.decode((Int64, String, String, String, String, Bool, Millis).self) {
                schedules.append(Schedule(id: id, partner: partner, cron: cron, sourceDirectory: directory, pattern: pattern, keep: keep, nextRunAt: next.date))
            }
            return schedules
        }
    }

    public func addSchedule(
        partner: PartnerName, cron: CronExpression, sourceDirectory: String, pattern: String, keep: Bool, firstRun: Date
    ) throws(WharfError) -> Schedule {
        let (name, expression, firstRun, now) = (partner.rawValue, cron.description, firstRun.roundedToMilliseconds, Date().roundedToMilliseconds)
        let id: Int64 = try transaction { connection in
            guard try await Self.exists(partner: name, connection) else { throw WharfError.unknownPartner(name) }
            let rows = try await connection.query("""
                INSERT INTO schedule (partner, cron, source_directory, pattern, keep, next_run_at, created_at)
                VALUES (\(name), \(expression), \(sourceDirectory), \(pattern), \(keep), \(firstRun), \(now)) RETURNING id
                """, logger: Self.quiet)
            for try await id in rows.decode(Int64.self) { return id }
            throw WharfError(.database, "PostgreSQL returned no schedule id")
        }
        return Schedule(id: id, partner: name, cron: expression, sourceDirectory: sourceDirectory, pattern: pattern, keep: keep, nextRunAt: firstRun)
    }

    public func removeSchedule(_ id: Int64) throws(WharfError) {
        let removed = try withConnection { connection in
            try await Self.count(connection.query("DELETE FROM schedule WHERE id = \(id) RETURNING id", logger: Self.quiet))
        }
        guard removed > 0 else { throw WharfError(.notFound, "no schedule \(id)", fix: "`wharf schedule list` shows the schedules") }
    }

    // MARK: Hooks

    public func hooks() throws(WharfError) -> [Hook] {
        try withConnection { connection in
            var hooks: [Hook] = []
            let rows = try await connection.query("""
                SELECT id, event, partner, exec, url, ca_file, max_attempts, retry_initial_seconds, timeout_seconds FROM hook ORDER BY id
                """, logger: Self.quiet)
            for try await (id, event, partner, exec, url, caFile, maxAttempts, initial, timeout)
                in rows.decode((Int64, String, String?, String?, String?, String?, Int, Double, Double).self) {
                let action: Hook.Action = if let exec {
                    .exec(try JSONDecoder().decode([String].self, from: Data(exec.utf8)))
                } else {
                    .url(url ?? "", caFile: caFile)
                }
                var retry = Hook.defaultRetry
                retry.maxAttempts = maxAttempts
                retry.initialDelay = initial
                retry.maximumDelay = max(retry.maximumDelay, initial)
                hooks.append(Hook(
                    id: id, event: Hook.Event(rawValue: event) ?? .received, partner: partner, action: action, retry: retry, timeout: timeout
                ))
            }
            return hooks
        }
    }

    public func addHook(
        event: Hook.Event, partner: PartnerName?, action: Hook.Action, retry: RetryPolicy, timeout: Double
    ) throws(WharfError) -> Hook {
        let (exec, url, caFile): (String?, String?, String?)
        switch action {
        case .exec(let words):
            do {
                (exec, url, caFile) = (String(decoding: try JSONEncoder().encode(words), as: UTF8.self), nil, nil)
            } catch {
                throw .invalid("the hook's command cannot be stored: \(error)")
            }
        case .url(let address, let file): (exec, url, caFile) = (nil, address, file)
        }
        let (name, kind, now) = (partner?.rawValue, event.rawValue, Date().roundedToMilliseconds)
        let (attempts, initial) = (retry.maxAttempts, retry.initialDelay)
        let id: Int64 = try transaction { connection in
            if let name, try await !Self.exists(partner: name, connection) { throw WharfError.unknownPartner(name) }
            let rows = try await connection.query("""
                INSERT INTO hook (event, partner, exec, url, ca_file, max_attempts, retry_initial_seconds, timeout_seconds, created_at)
                VALUES (\(kind), \(name), \(exec), \(url), \(caFile), \(attempts), \(initial), \(timeout), \(now)) RETURNING id
                """, logger: Self.quiet)
            for try await id in rows.decode(Int64.self) { return id }
            throw WharfError(.database, "PostgreSQL returned no hook id")
        }
        return Hook(id: id, event: event, partner: name, action: action, retry: retry, timeout: timeout)
    }

    public func removeHook(_ id: Int64) throws(WharfError) {
        let removed = try withConnection { connection in
            try await Self.count(connection.query("DELETE FROM hook WHERE id = \(id) RETURNING id", logger: Self.quiet))
        }
        guard removed > 0 else { throw WharfError(.notFound, "no hook with id \(id)", fix: "`wharf hook list` shows the hooks") }
    }

    public func hookEvents(hook: Int64?, partner: String?, state: HookEvent.State?, limit: Int) throws(WharfError) -> [HookEvent] {
        let state = state?.rawValue
        return try withConnection { connection in
            var events: [HookEvent] = []
            let rows = try await connection.query("""
                SELECT e.*, h.partner AS hook_partner, h.exec AS hook_exec, h.url AS hook_url, h.ca_file AS hook_ca_file,
                       h.max_attempts AS hook_max_attempts, h.retry_initial_seconds AS hook_retry_initial_seconds,
                       h.timeout_seconds AS hook_timeout_seconds
                FROM hook_event e JOIN hook h ON h.id = e.hook_id
                WHERE (\(hook)::bigint IS NULL OR e.hook_id = \(hook)) AND (\(partner)::text IS NULL OR e.partner = \(partner))
                  AND (\(state)::text IS NULL OR e.state = \(state))
                ORDER BY e.id DESC LIMIT \(limit)
                """, logger: Self.quiet)
            for try await row in rows { events.append(try Self.hookEvent(from: row).0) }
            return events
        }
    }

    public func hookEventCounts() throws(WharfError) -> [HookEvent.State: Int] {
        try withConnection { connection in
            var counts: [HookEvent.State: Int] = [:]
            for try await (state, count) in try await connection.query(
                "SELECT state, count(*) FROM hook_event GROUP BY state", logger: Self.quiet
            ).decode((String, Int).self) {
                if let state = HookEvent.State(rawValue: state) { counts[state] = count }
            }
            return counts
        }
    }

    // MARK: Certificates

    @discardableResult
    public func revoke(_ revocations: [Revocation], audit: AuditEvent) throws(WharfError) -> [Revocation] {
        let added: [Int] = try transaction { connection in
            var added: [Int] = []
            for (index, revocation) in revocations.enumerated() {
                let inserted = try await Self.count(connection.query("""
                    INSERT INTO revoked_certificate (fingerprint, serial, partner, revoked_at, reason)
                    VALUES (\(revocation.fingerprint?.hex), \(revocation.serial), \(revocation.partner),
                            \(revocation.revokedAt.roundedToMilliseconds), \(revocation.reason))
                    ON CONFLICT DO NOTHING RETURNING id
                    """, logger: Self.quiet))
                if inserted > 0 { added.append(index) }
            }
            if !added.isEmpty { try await Self.insert(audit, connection) }
            return added
        }
        return added.map { revocations[$0] }
    }

    public func revokedSerials() throws(WharfError) -> [(serial: String, revokedAt: Date)] {
        try withConnection { connection in
            var serials: [(serial: String, revokedAt: Date)] = []
            let rows = try await connection.query("""
                SELECT coalesce(r.serial, i.serial), min(r.revoked_at)
                FROM revoked_certificate r LEFT JOIN issued_certificate i ON i.fingerprint = r.fingerprint
                WHERE coalesce(r.serial, i.serial) IS NOT NULL
                GROUP BY coalesce(r.serial, i.serial) ORDER BY 1
                """, logger: Self.quiet)
            for try await (serial, at) in rows.decode((String, Millis).self) { serials.append((serial, at.date)) }
            return serials
        }
    }

    public func recordIssued(serial: String, fingerprint: CertificateFingerprint, partner: PartnerName, notAfter: Date) throws(WharfError) {
        let (serial, hex, name) = (Revocation.normalizedSerial(serial), fingerprint.hex, partner.rawValue)
        let (notAfter, now) = (notAfter.roundedToMilliseconds, Date().roundedToMilliseconds)
        try withConnection { connection in
            try await connection.run("""
                INSERT INTO issued_certificate (serial, fingerprint, partner, not_after, issued_at)
                VALUES (\(serial), \(hex), \(name), \(notAfter), \(now)) ON CONFLICT DO NOTHING
                """)
        }
    }

    // MARK: Audit

    public func auditEvents(_ filter: AuditFilter, limit: Int) throws(WharfError) -> [AuditEvent] {
        let (partner, since, kind, outcome) = (filter.partner, filter.since?.roundedToMilliseconds, filter.kind?.rawValue, filter.outcome?.rawValue)
        return try withConnection { connection in
            var events: [AuditEvent] = []
            let rows = try await connection.query("""
                SELECT * FROM audit_event
                WHERE (\(partner)::text IS NULL OR partner = \(partner)) AND (\(since)::timestamptz IS NULL OR at >= \(since))
                  AND (\(kind)::text IS NULL OR kind = \(kind)) AND (\(outcome)::text IS NULL OR outcome = \(outcome))
                ORDER BY id DESC LIMIT \(limit)
                """, logger: Self.quiet)
            for try await row in rows { events.append(try Self.auditEvent(from: row)) }
            return events
        }
    }

    public func auditHead() throws(WharfError) -> (count: Int, hash: String) {
        try withConnection { connection in
            let rows = try await connection.query("""
                SELECT (SELECT count(*) FROM audit_event),
                       COALESCE((SELECT hash FROM audit_event ORDER BY id DESC LIMIT 1),
                                (SELECT last_pruned_hash FROM audit_anchor WHERE id = 1), '')
                """, logger: Self.quiet)
            for try await (count, hash) in rows.decode((Int, String).self) { return (count, hash) }
            return (0, "")
        }
    }

    public func auditPruning() throws(WharfError) -> (pruned: Int, before: Date)? {
        try withConnection { connection in
            let rows = try await connection.query("SELECT pruned, pruned_before FROM audit_anchor WHERE id = 1", logger: Self.quiet)
            for try await (pruned, before) in rows.decode((Int, Millis).self) { return (pruned, before.date) }
            return nil
        }
    }

    /// As on SQLite. The event recording the pruning is made first (on this thread, from
    /// the count about to be removed); the removal then locks the chain's head, so no node
    /// appends between the removal and that event.
    @discardableResult
    public func pruneAudit(before cutoff: Date, audit: (Int) -> AuditEvent) throws(WharfError) -> Int {
        let cutoff = cutoff.roundedToMilliseconds
        let last: (id: Int64, count: Int)? = try withConnection { connection in
            let rows = try await connection.query(
                "SELECT max(id), count(*) FROM audit_event WHERE id <= (SELECT max(id) FROM audit_event WHERE at < \(cutoff))",
                logger: Self.quiet
            )
            for try await (id, count) in rows.decode((Int64?, Int).self) { return id.map { ($0, count) } }
            return nil
        }
        guard let last else { return 0 }
        let event = audit(last.count)
        return try transaction { connection in
            // The chain's head, locked: no node appends until this commits.
            try await connection.run("SELECT 1 FROM audit_head WHERE id = 1 FOR UPDATE")
            var hash = ""
            for try await found in try await connection.query("SELECT hash FROM audit_event WHERE id = \(last.id)", logger: Self.quiet).decode(String.self) {
                hash = found
            }
            let removed = try await Self.count(connection.query("DELETE FROM audit_event WHERE id <= \(last.id) RETURNING id", logger: Self.quiet))
            guard removed == last.count, !hash.isEmpty else {
                throw WharfError(.conflict, "the audit trail changed while it was being pruned", fix: "run the pruning again")
            }
            try await connection.run("""
                INSERT INTO audit_anchor (id, pruned, last_pruned_hash, pruned_before) VALUES (1, \(removed), \(hash), \(cutoff))
                ON CONFLICT (id) DO UPDATE SET pruned = audit_anchor.pruned + excluded.pruned,
                    last_pruned_hash = excluded.last_pruned_hash, pruned_before = excluded.pruned_before
                """)
            try await Self.insert(event, connection)
            return removed
        }
    }

    public func liftBan(_ address: String, now: Date, audit: AuditEvent) throws(WharfError) -> Bool {
        let now = now.roundedToMilliseconds
        return try transaction { connection in
            let lifted = try await Self.count(connection.query(
                "UPDATE address_ban SET until = \(now), times = 0 WHERE address = \(address) AND until > \(now) RETURNING address",
                logger: Self.quiet
            ))
            guard lifted > 0 else { return false }
            try await Self.insert(audit, connection)
            return true
        }
    }

    // MARK: Helpers

    static func exists(partner name: String, _ connection: PostgresConnection) async throws -> Bool {
        try await count(connection.query("SELECT 1 FROM partner WHERE name = \(name)", logger: quiet)) > 0
    }

    /// How many rows `rows` has, read to the end.
    static func count(_ rows: PostgresRowSequence) async throws -> Int {
        var count = 0
        for try await _ in rows { count += 1 }
        return count
    }
}
