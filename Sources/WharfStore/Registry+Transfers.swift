import Foundation
import GRDB
import WharfCore

extension Registry: TransferQueue {
    /// See `TransferQueue.enqueue`.
    public func enqueue(
        _ transfer: Transfer, sentBy schedule: (id: Int64, path: String)? = nil, install: () throws -> Void
    ) throws(WharfError) {
        try CommitThenInstall.run(
            commit: { () throws(WharfError) in
                try write { db in
                    try Self.insert(transfer, db)
                    if let schedule {
                        try db.execute(
                            sql: "INSERT OR REPLACE INTO schedule_sent (schedule_id, path, sha256) VALUES (?, ?, ?)",
                            arguments: [schedule.id, schedule.path, transfer.sha256]
                        )
                    }
                }
            },
            install: { try install() },
            withdraw: {
                try write { db in
                    if let schedule {
                        try db.execute(
                            sql: "DELETE FROM schedule_sent WHERE schedule_id = ? AND path = ?", arguments: [schedule.id, schedule.path]
                        )
                    }
                    try db.execute(sql: "DELETE FROM transfer WHERE id = ?", arguments: [transfer.id])
                }
            }
        )
    }

    static func insert(_ transfer: Transfer, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO transfer (id, partner, filename, size, sha256, state, attempts, created_at, queued_at, next_attempt_at)
                VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?)
                """,
            arguments: [transfer.id, transfer.partner, transfer.filename, transfer.size, transfer.sha256,
                        transfer.createdAt.stored, transfer.queuedAt.stored, transfer.createdAt.stored]
        )
    }

    /// Applies `transition` to transfer `id` with `assignments` (SQL `SET` terms after the
    /// state's own, with their `arguments`), guarded by the transition's sources; throws
    /// the transition's refusal (or `not_found`) when the row is not in one of them.
    static func apply(
        _ transition: Transfer.Transition, to id: String, setting assignments: String = "",
        arguments: StatementArguments = [], in db: Database
    ) throws {
        let extra = assignments.isEmpty ? "" : ", " + assignments
        try db.cachedStatement(sql: """
            UPDATE transfer SET state = '\(transition.target.rawValue)'\(extra)
            WHERE id = ? AND state IN (\(transition.sqlSources))
            """).execute(arguments: arguments + [id])
        if db.changesCount > 0 {
            // Downstream systems hear of the end of a transfer in the same commit.
            switch transition.target {
            case .delivered: try queueHookEvents(.delivered, transfer: id, db)
            case .dead: try queueHookEvents(.dead, transfer: id, db)
            default: break
            }
            return
        }
        guard let state = try String.fetchOne(db, sql: "SELECT state FROM transfer WHERE id = ?", arguments: [id]) else {
            throw unknownTransfer(id)
        }
        throw transition.refusal(transfer: id, state: Transfer.State(rawValue: state) ?? .dead)
    }

    /// Marks transfers due at `now` as `sending` and returns them, at most `limit`, and for
    /// each partner at most its delivery limit (`defaultPerPartner` unless it sets one)
    /// counting those already sending. Transfers of disabled partners wait.
    public func claimDue(now: Date, defaultPerPartner: Int, limit: Int) throws(WharfError) -> TransferClaim {
        // A claim need not survive a crash: at start, `recoverInterrupted` makes transfers
        // left `sending` due again, and a claim a crash lost leaves them `queued`, which is
        // the same. So it does not wait for an fsync.
        try write(durable: false) { db in try Self.claim(db, now: now, defaultPerPartner: defaultPerPartner, limit: limit) }
    }

    static func claim(_ db: Database, now: Date, defaultPerPartner: Int, limit: Int) throws -> TransferClaim {
        let sending = try Row.fetchAll(db.cachedStatement(sql: "SELECT partner, count(*) AS n FROM transfer WHERE state = 'sending' GROUP BY partner"))
        var busy: [String: Int] = Dictionary(uniqueKeysWithValues: sending.map { ($0["partner"], $0["n"]) })
        // Partners already at their limit are left out in SQL, so a long queue for a
        // busy partner is not read on every claim; the queue is read in order from its
        // index (the planner would rather sort it whole), so a claim stops early (the
        // cursor resets the cached statement when it goes, before the commit).
        let candidates = try Row.fetchCursor(
            db.cachedStatement(sql: """
                WITH busy AS (SELECT partner, count(*) AS n FROM transfer WHERE state = 'sending' GROUP BY partner)
                SELECT transfer.*, partner.max_deliveries AS partner_limit, partner.status AS partner_status
                FROM transfer INDEXED BY transfer_queue
                LEFT JOIN partner ON partner.name = transfer.partner
                LEFT JOIN busy ON busy.partner = transfer.partner
                WHERE transfer.state IN ('queued', 'retrying') AND transfer.next_attempt_at <= ?
                  AND (partner.status IS NULL OR partner.status = 'active')
                  AND coalesce(partner.delivery_mode, 'push') = 'push'
                  AND coalesce(busy.n, 0) < coalesce(partner.max_deliveries, ?)
                ORDER BY transfer.next_attempt_at, transfer.created_at
                """),
            arguments: [now.stored, defaultPerPartner]
        )
        var claimed: [Transfer] = []
        while claimed.count < limit, let row = try candidates.next() {
            let partner: String = row["partner"]
            let partnerLimit: Int = row["partner_limit"] ?? defaultPerPartner
            guard busy[partner, default: 0] < partnerLimit else { continue }
            busy[partner, default: 0] += 1
            var transfer = Self.transfer(from: row)
            transfer.state = .sending
            claimed.append(transfer)
        }
        for transfer in claimed {
            try apply(.claim, to: transfer.id, in: db)
        }
        return TransferClaim(transfers: claimed, partnerGeneration: try Self.partnerGeneration(db))
    }

    /// The transfers with these ids, read in one transaction.
    public func transfers(ids: [String]) throws(WharfError) -> [String: Transfer] {
        try read { db in
            let statement = try db.cachedStatement(sql: "SELECT * FROM transfer WHERE id = ?")
            var found: [String: Transfer] = [:]
            for id in ids {
                if let row = try Row.fetchOne(statement, arguments: [id]) { found[id] = Self.transfer(from: row) }
            }
            return found
        }
    }

    /// See `TransferQueue.finish`. Attempts are numbered over the transfer's whole life
    /// (`retry` resets the count the policy uses, not the numbering): `attempt.number` is
    /// the transfer's `attempts + 1`, and a number used before is refused.
    @discardableResult
    public func finish(
        _ transfer: Transfer, attempt: DeliveryAttempt, outcome: AttemptOutcome,
        claimingNext next: (now: Date, defaultPerPartner: Int)? = nil, install: () throws -> Void = {}
    ) throws(WharfError) -> TransferClaim? {
        try CommitThenInstall.run(
            commit: { () throws(WharfError) -> TransferClaim? in
                // Cached statements: these run for every delivery.
                try write { db in
                    try db.cachedStatement(sql: """
                            INSERT INTO delivery_attempt (transfer_id, number, started_at, duration_seconds, curl_code, http_status, bytes_sent, error)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                            """).execute(
                        arguments: [attempt.transferID, attempt.number, attempt.startedAt.stored, attempt.duration, attempt.curlCode,
                                    attempt.httpStatus, attempt.bytesSent, attempt.error]
                    )
                    if attempt.uploadLocation != transfer.uploadLocation {
                        try db.execute(sql: "UPDATE transfer SET upload_location = ? WHERE id = ?", arguments: [attempt.uploadLocation, transfer.id])
                    }
                    switch outcome {
                    case .delivered(let receipt, let signature):
                        try Self.apply(
                            .deliver, to: transfer.id,
                            setting: "attempts = attempts + 1, attempts_since_queued = attempts_since_queued + 1, receipt = ?, receipt_signature = ?, delivered_at = ?, next_attempt_at = NULL, last_error = NULL", arguments: [receipt, signature, attempt.startedAt.addingTimeInterval(attempt.duration).stored], in: db
                        )
                    case .retry(let date, let reason):
                        try Self.apply(
                            .scheduleRetry, to: transfer.id,
                            setting: "attempts = attempts + 1, attempts_since_queued = attempts_since_queued + 1, next_attempt_at = ?, last_error = ?", arguments: [date.stored, reason], in: db
                        )
                    case .dead(let reason):
                        try Self.apply(
                            .giveUp, to: transfer.id,
                            setting: "attempts = attempts + 1, attempts_since_queued = attempts_since_queued + 1, next_attempt_at = NULL, last_error = ?", arguments: [reason], in: db
                        )
                    }
                    try Self.insert(AuditEvent.delivery(transfer, outcome: outcome, status: attempt.httpStatus), db)
                    guard let next else { return nil }
                    return try Self.claim(db, now: next.now, defaultPerPartner: next.defaultPerPartner, limit: 1)
                }
            },
            install: { _ in try install() },
            withdraw: { claim in
                // The delivery stays recorded (recovery moves its file at start); the transfer
                // claimed for this slot will not be started by this caller: due again at once.
                for claimed in claim?.transfers ?? [] {
                    try? release(claimed.id, retryAt: next?.now ?? Date(), reason: "not started: the delivery before it could not be finished")
                }
            }
        )
    }

    /// See `TransferQueue.release`.
    public func release(_ transferID: String, retryAt date: Date, reason: String) throws(WharfError) {
        try write { db in
            try Self.apply(.release, to: transferID, setting: "next_attempt_at = ?, last_error = ?", arguments: [date.stored, reason], in: db)
        }
    }

    /// See `TransferQueue.kill`.
    public func kill(_ transferID: String, reason: String) throws(WharfError) {
        try write { db in
            try Self.apply(.kill, to: transferID, setting: "next_attempt_at = NULL, last_error = ?", arguments: [reason], in: db)
            let partner = try String.fetchOne(db, sql: "SELECT partner FROM transfer WHERE id = ?", arguments: [transferID])
            try Self.insert(AuditEvent(
                kind: .delivery, outcome: .dead, status: nil, partner: partner, subject: nil, fingerprint: nil,
                remoteAddress: nil, detail: "\(transferID): \(reason)"
            ), db)
        }
    }

    /// See `TransferQueue.recoverInterrupted`.
    public func recoverInterrupted(now: Date = Date()) throws(WharfError) -> Int {
        try write { db in
            try db.execute(
                sql: """
                    UPDATE transfer SET state = '\(Transfer.Transition.recover.target.rawValue)', next_attempt_at = ?,
                                        last_error = 'interrupted: the process stopped during an attempt'
                    WHERE state IN (\(Transfer.Transition.recover.sqlSources))
                    """,
                arguments: [now.stored]
            )
            return db.changesCount
        }
    }

    public func transfer(id: String) throws(WharfError) -> Transfer? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM transfer WHERE id = ?", arguments: [id]).map(Self.transfer(from:)) }
    }

    /// How many transfers are in each state.
    public func transferCounts() throws(WharfError) -> [Transfer.State: Int] {
        try read { db in
            var counts: [Transfer.State: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT state, count(*) AS n FROM transfer GROUP BY state") {
                if let state = Transfer.State(rawValue: row["state"]) { counts[state] = row["n"] }
            }
            return counts
        }
    }

    /// Each partner's transfers by state (partners with none are absent): what the
    /// `wharf_transfers` gauge reports.
    public func transferCountsByPartner() throws(WharfError) -> [String: [Transfer.State: Int]] {
        try read { db in
            var counts: [String: [Transfer.State: Int]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT partner, state, count(*) AS n FROM transfer GROUP BY partner, state") {
                if let state = Transfer.State(rawValue: row["state"]) { counts[row["partner"], default: [:]][state] = row["n"] }
            }
            return counts
        }
    }

    /// When each partner's longest-waiting transfer (queued or retrying) was queued.
    public func oldestWaitingByPartner() throws(WharfError) -> [String: Date] {
        try read { db in
            var oldest: [String: Date] = [:]
            let sql = "SELECT partner, min(queued_at) AS at FROM transfer WHERE state IN ('queued', 'retrying') GROUP BY partner"
            for row in try Row.fetchAll(db, sql: sql) {
                oldest[row["partner"]] = row.date("at")
            }
            return oldest
        }
    }

    /// Whether the registry answers a query now.
    public func ping() throws(WharfError) {
        try read { db in _ = try Int.fetchOne(db, sql: "SELECT 1") }
    }

    /// The transfer that has waited longest for delivery (queued or retrying), if any.
    public func oldestWaitingTransfer() throws(WharfError) -> Transfer? {
        try read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM transfer WHERE state IN ('queued', 'retrying') ORDER BY queued_at, id LIMIT 1"
            ).map(Self.transfer(from:))
        }
    }

    /// Transfers, newest first, optionally of one state or partner.
    public func transfers(state: Transfer.State? = nil, partner: String? = nil, limit: Int = 100) throws(WharfError) -> [Transfer] {
        try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM transfer WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR partner = ?2)
                    ORDER BY created_at DESC, id DESC LIMIT ?3
                    """,
                arguments: [state?.rawValue, partner, limit]
            ).map(Self.transfer(from:))
        }
    }

    public func attempts(of transferID: String) throws(WharfError) -> [DeliveryAttempt] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM delivery_attempt WHERE transfer_id = ? ORDER BY number", arguments: [transferID]).map { row in
                DeliveryAttempt(
                    transferID: row["transfer_id"], number: row["number"], startedAt: row.date("started_at"),
                    duration: row["duration_seconds"], curlCode: row["curl_code"], httpStatus: row["http_status"],
                    bytesSent: row["bytes_sent"], error: row["error"], remoteAddress: row["remote_address"]
                )
            }
        }
    }

    /// A claim on SQLite holds until it is finished: one node, and `recoverInterrupted`
    /// at its start, take care of one that was lost.
    public func renewClaims(_ transferIDs: [String], now: Date = Date()) throws(WharfError) -> Set<String> {
        Set(transferIDs)
    }

    /// See `TransferQueue.retry`.
    public func retry(_ transferID: String, now: Date = Date()) throws(WharfError) -> Transfer {
        try write { db in
            try Self.apply(
                .retry, to: transferID, setting: "attempts_since_queued = 0, queued_at = ?, next_attempt_at = ?, last_error = NULL", arguments: [now.stored, now.stored], in: db
            )
            return try Row.fetchOne(db, sql: "SELECT * FROM transfer WHERE id = ?", arguments: [transferID]).map(Self.transfer(from:))!
        }
    }

    /// See `TransferQueue.cancel`.
    public func cancel(_ transferID: String, remove: () throws -> Void) throws(WharfError) {
        try CommitThenInstall.run(
            commit: { () throws(WharfError) in
                try write { db in try Self.apply(.cancel, to: transferID, setting: "next_attempt_at = NULL", in: db) }
            },
            install: { try remove() },
            // A cancelled transfer whose file is still there is finished by recovery at start.
            withdraw: { _ in }
        )
    }

    static func unknownTransfer(_ id: String) -> WharfError {
        WharfError(.notFound, "no transfer \(id)", fix: "`wharf transfers list` shows the transfers")
    }

    static func transfer(from row: Row) -> Transfer {
        Transfer(
            id: row["id"], partner: row["partner"], filename: row["filename"], size: row["size"], sha256: row["sha256"],
            state: Transfer.State(rawValue: row["state"]) ?? .dead, attempts: row["attempts"],
            attemptsSinceQueued: row["attempts_since_queued"], createdAt: row.date("created_at"), queuedAt: row.date("queued_at"),
            nextAttemptAt: row.optionalDate("next_attempt_at"), lastError: row["last_error"], receipt: row["receipt"],
            deliveredAt: row.optionalDate("delivered_at"), receiptSignature: row["receipt_signature"],
            uploadLocation: row["upload_location"]
        )
    }
}
