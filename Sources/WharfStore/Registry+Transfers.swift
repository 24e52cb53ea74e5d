import Foundation
import GRDB
import WharfCore

extension Registry {
    /// How an attempt ended, as the worker records it.
    public enum AttemptOutcome: Sendable {
        case delivered(receipt: String)
        case retry(at: Date, reason: String)
        case dead(reason: String)
    }

    /// Records a new queued transfer, then runs `install` (moving its file to
    /// `spool/outgoing/`); if that throws, the transfer is deleted again. A crash in between
    /// leaves a transfer whose file is still staged, which `Spool.recover` moves into place.
    public func enqueue(_ transfer: Transfer, install: () throws -> Void) throws(WharfError) {
        try write { db in try Self.insert(transfer, db) }
        try installOrWithdraw(transfer.id, install)
    }

    /// Runs `install`; if it throws, deletes the transfer (and runs `withdraw`) again.
    func installOrWithdraw(
        _ transferID: String, withdraw: (Database) throws -> Void = { _ in }, _ install: () throws -> Void
    ) throws(WharfError) {
        do {
            try install()
        } catch {
            try? write { db in
                try withdraw(db)
                try db.execute(sql: "DELETE FROM transfer WHERE id = ?", arguments: [transferID])
            }
            throw error as? WharfError ?? WharfError(.storage, "\(error)")
        }
    }

    static func insert(_ transfer: Transfer, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO transfer (id, partner, filename, size, sha256, state, attempts, created_at, queued_at, next_attempt_at)
                VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?)
                """,
            arguments: [transfer.id, transfer.partner, transfer.filename, transfer.size, transfer.sha256,
                        transfer.createdAt.stored, transfer.createdAt.stored, transfer.createdAt.stored]
        )
    }

    /// Marks transfers due at `now` as `sending` and returns them, at most `limit`, and for
    /// each partner at most its delivery limit (`defaultPerPartner` unless it sets one)
    /// counting those already sending. Transfers of disabled partners wait.
    public func claimDue(now: Date, defaultPerPartner: Int, limit: Int) throws(WharfError) -> Claim {
        // A claim need not survive a crash: at start, `requeueInterrupted` makes transfers
        // left `sending` due again, and a claim a crash lost leaves them `queued`, which is
        // the same. So it does not wait for an fsync.
        try write(durable: false) { db in try Self.claim(db, now: now, defaultPerPartner: defaultPerPartner, limit: limit) }
    }

    static func claim(_ db: Database, now: Date, defaultPerPartner: Int, limit: Int) throws -> Claim {
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
        let markSending = try db.cachedStatement(sql: "UPDATE transfer SET state = 'sending' WHERE id = ?")
        for transfer in claimed {
            try markSending.execute(arguments: [transfer.id])
        }
        return Claim(transfers: claimed, partnerGeneration: try Self.partnerGeneration(db))
    }

    /// Transfers claimed for delivery, and the partner generation at the claim (partners
    /// read at the same generation are still as they were).
    public struct Claim: Sendable {
        public var transfers: [Transfer]
        public var partnerGeneration: Int64
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

    /// When the next queued or retrying transfer falls due, if any.
    public func nextDueDate() throws(WharfError) -> Date? {
        try read { db in
            try StoredDate.fetchOne(db, sql: "SELECT min(next_attempt_at) FROM transfer WHERE state IN ('queued', 'retrying')")?.date
        }
    }

    /// Records an attempt and what follows from it, in one transaction, then runs `install`
    /// (moving a delivered file to `sent/`). A crash in between leaves a delivered transfer
    /// whose file is still in `outgoing/`, which `Spool.recover`'s caller moves at start. Attempts are numbered over the
    /// transfer's whole life (`retry` resets the count the policy uses, not the numbering).
    ///
    /// With `claimingNext`, the same transaction claims (as `claimDue` does) one transfer
    /// due then for the delivery slot this attempt frees, and returns it: a busy worker
    /// moves from one delivery to the next without a transaction of its own for the claim.
    @discardableResult
    public func finish(
        _ transfer: Transfer, attempt: DeliveryAttempt, outcome: AttemptOutcome,
        claimingNext next: (now: Date, defaultPerPartner: Int)? = nil, install: () throws -> Void = {}
    ) throws(WharfError) -> Claim? {
        // Cached statements: these run for every delivery.
        let claim: Claim? = try write { db in
            try db.cachedStatement(sql: """
                    INSERT INTO delivery_attempt (transfer_id, number, started_at, duration_seconds, curl_code, http_status, bytes_sent, error)
                    VALUES (?1, (SELECT coalesce(max(number), 0) + 1 FROM delivery_attempt WHERE transfer_id = ?1), ?2, ?3, ?4, ?5, ?6, ?7)
                    """).execute(
                arguments: [attempt.transferID, attempt.startedAt.stored, attempt.duration, attempt.curlCode,
                            attempt.httpStatus, attempt.bytesSent, attempt.error]
            )
            switch outcome {
            case .delivered(let receipt):
                try db.cachedStatement(sql: """
                        UPDATE transfer SET state = 'delivered', attempts = attempts + 1, receipt = ?, delivered_at = ?,
                                            next_attempt_at = NULL, last_error = NULL
                        WHERE id = ?
                        """).execute(
                    arguments: [receipt, attempt.startedAt.addingTimeInterval(attempt.duration).stored, transfer.id]
                )
            case .retry(let date, let reason):
                try db.execute(
                    sql: "UPDATE transfer SET state = 'retrying', attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?",
                    arguments: [date.stored, reason, transfer.id]
                )
            case .dead(let reason):
                try db.execute(
                    sql: "UPDATE transfer SET state = 'dead', attempts = attempts + 1, next_attempt_at = NULL, last_error = ? WHERE id = ?",
                    arguments: [reason, transfer.id]
                )
            }
            guard let next else { return nil }
            return try Self.claim(db, now: next.now, defaultPerPartner: next.defaultPerPartner, limit: 1)
        }
        do {
            try install()
        } catch {
            // The claimed transfer will not be started by this caller: due again at once.
            for claimed in claim?.transfers ?? [] {
                try? release(claimed.id, retryAt: next?.now ?? Date(), reason: "not started: the delivery before it could not be finished")
            }
            throw error as? WharfError ?? WharfError(.storage, "\(error)")
        }
        return claim
    }

    /// Puts a transfer that is `sending` back to `retrying` without recording an attempt:
    /// the last resort when an attempt could not even be recorded.
    public func release(_ transferID: String, retryAt date: Date, reason: String) throws(WharfError) {
        try write { db in
            try db.execute(
                sql: "UPDATE transfer SET state = 'retrying', next_attempt_at = ?, last_error = ? WHERE id = ? AND state = 'sending'",
                arguments: [date.stored, reason, transferID]
            )
        }
    }

    /// Marks a transfer dead without an attempt (its partner is gone, for example).
    public func kill(_ transferID: String, reason: String) throws(WharfError) {
        try write { db in
            try db.execute(
                sql: "UPDATE transfer SET state = 'dead', next_attempt_at = NULL, last_error = ? WHERE id = ?",
                arguments: [reason, transferID]
            )
        }
    }

    /// Puts transfers that were `sending` when the process stopped back in the queue, due
    /// now. Returns how many. Run once at start, before the worker claims anything.
    public func requeueInterrupted(now: Date = Date()) throws(WharfError) -> Int {
        try write { db in
            try db.execute(
                sql: """
                    UPDATE transfer SET state = 'retrying', next_attempt_at = ?,
                                        last_error = 'interrupted: the process stopped during an attempt'
                    WHERE state = 'sending'
                    """,
                arguments: [now.stored]
            )
            return db.changesCount
        }
    }

    public func transfer(id: String) throws(WharfError) -> Transfer? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM transfer WHERE id = ?", arguments: [id]).map(Self.transfer(from:)) }
    }

    /// Transfers, newest first, optionally of one state or partner.
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
                    bytesSent: row["bytes_sent"], error: row["error"]
                )
            }
        }
    }

    /// Puts a dead (or waiting) transfer back in the queue, due now, with a fresh count of
    /// attempts and age; its earlier attempts stay on record.
    public func retry(_ transferID: String, now: Date = Date()) throws(WharfError) -> Transfer {
        try write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM transfer WHERE id = ?", arguments: [transferID]) else {
                throw Self.unknownTransfer(transferID)
            }
            let transfer = Self.transfer(from: row)
            guard [.dead, .retrying, .queued].contains(transfer.state) else {
                throw WharfError.invalid("transfer \(transferID) is \(transfer.state.rawValue)", fix: "only a dead or waiting transfer can be retried")
            }
            try db.execute(
                sql: "UPDATE transfer SET state = 'queued', attempts = 0, queued_at = ?, next_attempt_at = ? WHERE id = ?",
                arguments: [now.stored, now.stored, transferID]
            )
            return try Row.fetchOne(db, sql: "SELECT * FROM transfer WHERE id = ?", arguments: [transferID]).map(Self.transfer(from:))!
        }
    }

    /// Cancels a transfer that is not being sent or finished, then runs `remove` (deleting
    /// its file).
    public func cancel(_ transferID: String, remove: () throws -> Void) throws(WharfError) {
        try write { db in
            guard let state = try String.fetchOne(db, sql: "SELECT state FROM transfer WHERE id = ?", arguments: [transferID]) else {
                throw Self.unknownTransfer(transferID)
            }
            guard ["queued", "retrying", "dead"].contains(state) else {
                throw WharfError.invalid(
                    "transfer \(transferID) is \(state) and cannot be cancelled",
                    fix: state == "sending" ? "wait for the attempt to end, then cancel" : "it is already finished"
                )
            }
            try db.execute(sql: "UPDATE transfer SET state = 'cancelled', next_attempt_at = NULL WHERE id = ?", arguments: [transferID])
        }
        do {
            try remove()
        } catch {
            throw error as? WharfError ?? WharfError(.storage, "\(error)")
        }
    }

    /// The date from which a transfer's age counts (its first queueing, or its last `retry`).
    public func queuedAt(_ transferID: String) throws(WharfError) -> Date? {
        try read { db in try StoredDate.fetchOne(db, sql: "SELECT queued_at FROM transfer WHERE id = ?", arguments: [transferID])?.date }
    }

    static func unknownTransfer(_ id: String) -> WharfError {
        WharfError(.notFound, "no transfer \(id)", fix: "`wharf transfers list` shows the transfers")
    }

    static func transfer(from row: Row) -> Transfer {
        Transfer(
            id: row["id"], partner: row["partner"], filename: row["filename"], size: row["size"], sha256: row["sha256"],
            state: Transfer.State(rawValue: row["state"]) ?? .dead, attempts: row["attempts"], createdAt: row.date("created_at"),
            nextAttemptAt: row.optionalDate("next_attempt_at"), lastError: row["last_error"], receipt: row["receipt"],
            deliveredAt: row.optionalDate("delivered_at")
        )
    }
}
