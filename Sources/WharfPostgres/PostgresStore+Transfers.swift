import Foundation
import PostgresNIO
import WharfCore

/// The outbound queue shared by every node. A claim is a lease: the transfer is `sending`,
/// owned by the node that claimed it, until `lease_expires_at`. The owner renews it while
/// the attempt runs (`renewClaims`); a lease that runs out (its node died or lost the
/// database) is taken back into the queue (`rescueExpiredClaims`) and the transfer is sent
/// again with the same `Idempotency-Key`, which a Wharf receiver answers with its first
/// receipt. Only the lease's owner can finish or release it.
extension PostgresStore: TransferQueue {
    /// Claims are made one node at a time (this transaction lock), so that per-partner
    /// limits hold across all nodes together: each claim counts the transfers every node
    /// is sending, as committed by the claim before it. (Claims racing without it would
    /// mostly contend for the same rows, which SKIP LOCKED hands to one of them, but a
    /// transfer falling due between their two snapshots could take a slot twice.)
    /// Written into `wharf_claim_due` by migration v4: never change it, since a released
    /// migration's text must not change and nodes of two builds must take the same lock.
    static let claimLockKey: Int64 = 0x57_68_61_72_66_01

    public func enqueue(_ transfer: Transfer, sentBy schedule: (id: Int64, path: String)?, install: () throws -> Void) throws(WharfError) {
        let scheduleID = schedule?.id
        let path = schedule?.path
        try CommitThenInstall.run(
            commit: { () throws(WharfError) in
                try transaction { connection in
                    try await Self.insert(transfer, connection)
                    try await Self.announceQueued(partner: transfer.partner, connection)
                    if let scheduleID, let path {
                        try await connection.run("""
                            INSERT INTO schedule_sent (schedule_id, path, sha256) VALUES (\(scheduleID), \(path), \(transfer.sha256))
                            ON CONFLICT (schedule_id, path) DO UPDATE SET sha256 = excluded.sha256
                            """)
                    }
                }
            },
            install: { try install() },
            withdraw: {
                try transaction { connection in
                    if let scheduleID, let path {
                        try await connection.run(
                            "DELETE FROM schedule_sent WHERE schedule_id = \(scheduleID) AND path = \(path)"
                        )
                    }
                    try await connection.run("DELETE FROM transfer WHERE id = \(transfer.id)")
                }
            }
        )
    }

    static func insert(_ transfer: Transfer, _ connection: PostgresConnection) async throws {
        let created = transfer.createdAt.roundedToMilliseconds
        try await connection.run("""
            INSERT INTO transfer (id, partner, filename, size, sha256, state, attempts, created_at, queued_at, next_attempt_at)
            VALUES (\(transfer.id), \(transfer.partner), \(transfer.filename), \(transfer.size), \(transfer.sha256), 'queued', 0,
                    \(created), \(transfer.queuedAt.roundedToMilliseconds), \(created))
            """)
    }

    /// Marks up to `limit` due transfers `sending`, leased to this node, in one call to
    /// `wharf_claim_due` (see `PostgresMigrations`), which reads the partner generation in
    /// the same round trip: each partner's due transfers are ranked after those it already
    /// has sending (on any node), and only ranks within its limit are taken. Rows another
    /// transaction holds are skipped, not waited for.
    public func claimDue(now: Date, defaultPerPartner: Int, limit: Int) throws(WharfError) -> TransferClaim {
        let now = now.roundedToMilliseconds
        let statement = ClaimDueStatement(
            node: node, now: now, expires: now.addingTimeInterval(lease).roundedToMilliseconds,
            defaultPerPartner: defaultPerPartner, limit: limit
        )
        return try withConnection { connection in
            var claimed: [Transfer] = []
            var generation: Int64 = 0
            for try await (value, transfer) in try await connection.execute(statement, logger: Self.quiet) {
                generation = value
                if let transfer { claimed.append(transfer) }
            }
            claimed.sort { ($0.nextAttemptAt ?? $0.createdAt, $0.createdAt, $0.id) < ($1.nextAttemptAt ?? $1.createdAt, $1.createdAt, $1.id) }
            return TransferClaim(transfers: claimed, partnerGeneration: generation)
        }
    }

    /// The claim's one call: the partner generation, with each transfer claimed beside it
    /// (one row with no transfer when none was).
    struct ClaimDueStatement: PostgresPreparedStatement {
        static let sql = """
            SELECT generation.value AS generation, claimed.*
            FROM partner_generation AS generation
            LEFT JOIN LATERAL wharf_claim_due($1, $2, $3, $4, $5) AS claimed ON true
            WHERE generation.id = 1
            """
        static let bindingDataTypes: [PostgresDataType] = [.text, .timestamptz, .timestamptz, .int4, .int4]
        typealias Row = (Int64, Transfer?)

        let node: String
        let now: Date
        let expires: Date
        let defaultPerPartner: Int
        let limit: Int

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings()
            bindings.append(node)
            bindings.append(now)
            bindings.append(expires)
            bindings.append(Int32(clamping: defaultPerPartner))
            bindings.append(Int32(clamping: limit))
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> (Int64, Transfer?) {
            let columns = row.makeRandomAccess()
            let generation = try columns["generation"].decode(Int64.self)
            guard try columns["id"].decode(String?.self) != nil else { return (generation, nil) }
            return (generation, try PostgresStore.transfer(from: row))
        }
    }

    static func partnerGeneration(_ connection: PostgresConnection) async throws -> Int64 {
        for try await value in try await connection.execute(PartnerGenerationStatement(), logger: quiet) {
            return value
        }
        return 0
    }

    /// The partner generation: read by the listener at every handshake and request.
    struct PartnerGenerationStatement: PostgresPreparedStatement {
        static let sql = "SELECT value FROM partner_generation WHERE id = 1"
        typealias Row = Int64

        func makeBindings() -> PostgresBindings { PostgresBindings() }
        func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }
    }

    /// Extends this node's leases of `transferIDs` by the lease duration from `now`; returns
    /// the ids it still holds (a transfer missing from the answer was taken back after its
    /// lease ran out, and its attempt must not be recorded as this node's).
    public func renewClaims(_ transferIDs: [String], now: Date = Date()) throws(WharfError) -> Set<String> {
        guard !transferIDs.isEmpty else { return [] }
        let node = node
        let expires = now.addingTimeInterval(lease).roundedToMilliseconds
        return try withConnection { connection in
            var held: Set<String> = []
            let rows = try await connection.query("""
                UPDATE transfer SET lease_expires_at = \(expires)
                WHERE id = ANY(\(transferIDs)) AND state = 'sending' AND lease_owner = \(node)
                RETURNING id
                """, logger: Self.quiet)
            for try await id in rows.decode(String.self) { held.insert(id) }
            return held
        }
    }

    /// Takes back into the queue, due at `now`, every transfer whose lease ran out before
    /// `now`; returns how many. What the leader runs, and any node at start.
    public func rescueExpiredClaims(now: Date = Date()) throws(WharfError) -> Int {
        let now = now.roundedToMilliseconds
        return try transaction { connection in
            let rows = try await connection.query("""
                UPDATE transfer SET state = 'retrying', next_attempt_at = \(now), lease_owner = NULL, lease_expires_at = NULL,
                                    last_error = 'interrupted: the lease of node ' || lease_owner || ' ran out during an attempt'
                WHERE state = 'sending' AND lease_expires_at < \(now)
                RETURNING id
                """, logger: Self.quiet)
            var count = 0
            for try await _ in rows { count += 1 }
            return count
        }
    }

    /// Applies `transition` to transfer `id` with `assignments` (SQL `SET` terms whose
    /// values `bind` appends as `$3`, `$4`…, after the id and the node), guarded by the transition's sources and,
    /// from `sending`, by this node's lease; throws the transition's refusal, `not_found`,
    /// or a conflict naming the node that holds the lease now.
    static func apply(
        _ transition: Transfer.Transition, to id: String, setting assignments: String = "",
        bind: (inout PostgresBindings) -> Void = { _ in }, node: String, in connection: PostgresConnection
    ) async throws {
        var bindings = PostgresBindings()
        bindings.append(id)
        bindings.append(node)
        var sql = "UPDATE transfer SET state = '\(transition.target.rawValue)'"
        if transition.target != .sending { sql += ", lease_owner = NULL, lease_expires_at = NULL" }
        if !assignments.isEmpty { sql += ", " + assignments }
        bind(&bindings)
        sql += " WHERE id = $1 AND state IN (\(transition.sqlSources)) AND (state <> 'sending' OR lease_owner = $2) RETURNING id"
        let changed = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: quiet)
        var updated = false
        for try await _ in changed { updated = true }
        if updated {
            switch transition.target {
            case .delivered: try await queueHookEvents(.delivered, transfer: id, connection)
            case .dead: try await queueHookEvents(.dead, transfer: id, connection)
            default: break
            }
            return
        }
        try await refuse(transition, of: id, node: node, connection)
    }

    /// Throws why `transition` of transfer `id` changed nothing: the transition's refusal for
    /// the state the transfer is in, a conflict naming the node whose lease it is now, or
    /// `not_found`.
    static func refuse(_ transition: Transfer.Transition, of id: String, node: String, _ connection: PostgresConnection) async throws -> Never {
        let current = try await connection.query("SELECT state, lease_owner FROM transfer WHERE id = \(id)", logger: quiet)
        for try await (state, owner) in current.decode((String, String?).self) {
            let state = Transfer.State(rawValue: state) ?? .dead
            if state == .sending, transition.sources.contains(.sending), let owner, owner != node {
                throw WharfError(
                    .conflict, "transfer \(id) is being sent by node \(quoted(owner)): this node's lease ran out and it was taken back",
                    fix: "nothing to do: the other node's attempt is the one recorded"
                )
            }
            throw transition.refusal(transfer: id, state: state)
        }
        throw WharfError(.notFound, "no transfer \(id)", fix: "`wharf transfers list` shows the transfers")
    }

    public func transfers(ids: [String]) throws(WharfError) -> [String: Transfer] {
        try withConnection { connection in
            var found: [String: Transfer] = [:]
            for try await row in try await connection.query("SELECT * FROM transfer WHERE id = ANY(\(ids))", logger: Self.quiet) {
                let transfer = try Self.transfer(from: row)
                found[transfer.id] = transfer
            }
            return found
        }
    }

    public func transfer(id: String) throws(WharfError) -> Transfer? {
        try transfers(ids: [id])[id]
    }

    public func release(_ transferID: String, retryAt date: Date, reason: String) throws(WharfError) {
        let node = node
        try transaction { connection in
            try await Self.apply(
                .release, to: transferID, setting: "next_attempt_at = $3, last_error = $4",
                bind: { $0.append(date.roundedToMilliseconds); $0.append(reason) }, node: node, in: connection
            )
        }
    }

    public func kill(_ transferID: String, reason: String) throws(WharfError) {
        let node = node
        try transaction { connection in
            try await Self.apply(
                .kill, to: transferID, setting: "next_attempt_at = NULL, last_error = $3", bind: { $0.append(reason) }, node: node, in: connection
            )
            var partner: String?
            for try await name in try await connection.query("SELECT partner FROM transfer WHERE id = \(transferID)", logger: Self.quiet).decode(String.self) {
                partner = name
            }
            try await Self.insert(AuditEvent(
                kind: .delivery, outcome: .dead, status: nil, partner: partner, subject: nil, fingerprint: nil,
                remoteAddress: nil, detail: "\(transferID): \(reason)"
            ), connection)
        }
    }

    public func retry(_ transferID: String, now: Date) throws(WharfError) -> Transfer {
        let node = node
        let now = now.roundedToMilliseconds
        try transaction { connection in
            try await Self.apply(
                .retry, to: transferID, setting: "attempts_since_queued = 0, queued_at = $3, next_attempt_at = $3, last_error = NULL",
                bind: { $0.append(now) }, node: node, in: connection
            )
            var partners: [String] = []
            for try await partner in try await connection.query("SELECT partner FROM transfer WHERE id = \(transferID)", logger: Self.quiet).decode(String.self) {
                partners.append(partner)
            }
            for partner in partners { try await Self.announceQueued(partner: partner, connection) }
        }
        guard let transfer = try transfer(id: transferID) else {
            throw WharfError(.notFound, "no transfer \(transferID)", fix: "`wharf transfers list` shows the transfers")
        }
        return transfer
    }

    public func cancel(_ transferID: String, remove: () throws -> Void) throws(WharfError) {
        let node = node
        try CommitThenInstall.run(
            commit: { () throws(WharfError) in
                try transaction { connection in
                    try await Self.apply(.cancel, to: transferID, setting: "next_attempt_at = NULL", node: node, in: connection)
                }
            },
            install: { try remove() },
            withdraw: { _ in }
        )
    }

    /// This node's claims left from a run that stopped, and any other node's whose lease
    /// ran out: due again at `now`. Another node's live claims are left alone.
    public func recoverInterrupted(now: Date) throws(WharfError) -> Int {
        let node = node
        let now = now.roundedToMilliseconds
        return try transaction { connection in
            let rows = try await connection.query("""
                UPDATE transfer SET state = 'retrying', next_attempt_at = \(now), lease_owner = NULL, lease_expires_at = NULL,
                                    last_error = 'interrupted: the process stopped during an attempt'
                WHERE state = 'sending' AND (lease_owner = \(node) OR lease_expires_at < \(now))
                RETURNING id
                """, logger: Self.quiet)
            var count = 0
            for try await _ in rows { count += 1 }
            return count
        }
    }

    /// Every transfer's lease, for `wharf transfers list` and the tests: who holds it, until when.
    public func leases() throws(WharfError) -> [String: (owner: String, expires: Date)] {
        try withConnection { connection in
            var leases: [String: (owner: String, expires: Date)] = [:]
            let rows = try await connection.query(
                "SELECT id, lease_owner, lease_expires_at FROM transfer WHERE state = 'sending'", logger: Self.quiet
            )
            for try await (id, owner, expires) in rows.decode((String, String, Millis).self) { leases[id] = (owner, expires.date) }
            return leases
        }
    }

    static func transfer(from row: PostgresRow) throws -> Transfer {
        let row = row.makeRandomAccess()
        return Transfer(
            id: try row["id"].decode(String.self), partner: try row["partner"].decode(String.self),
            filename: try row["filename"].decode(String.self), size: try row["size"].decode(Int64.self),
            sha256: try row["sha256"].decode(String.self),
            state: Transfer.State(rawValue: try row["state"].decode(String.self)) ?? .dead,
            attempts: try row["attempts"].decode(Int.self), attemptsSinceQueued: try row["attempts_since_queued"].decode(Int.self),
            createdAt: try row["created_at"].decode(Millis.self).date, queuedAt: try row["queued_at"].decode(Millis.self).date,
            nextAttemptAt: try row["next_attempt_at"].decode(Millis?.self)?.date, lastError: try row["last_error"].decode(String?.self),
            receipt: try row["receipt"].decode(String?.self), deliveredAt: try row["delivered_at"].decode(Millis?.self)?.date,
            receiptSignature: try row["receipt_signature"].decode(String?.self), uploadLocation: try row["upload_location"].decode(String?.self)
        )
    }

    /// Queues `event` of transfer `id` for each hook that wants one, in the transition's
    /// transaction.
    static func queueHookEvents(_ event: Hook.Event, transfer id: String, _ connection: PostgresConnection) async throws {
        let now = Date().roundedToMilliseconds
        try await connection.run("""
            INSERT INTO hook_event (hook_id, event, subject_id, partner, filename, size, sha256, reason, occurred_at, next_attempt_at)
            SELECT hook.id, hook.event, transfer.id, transfer.partner, transfer.filename, transfer.size, transfer.sha256,
                   transfer.last_error, \(now), \(now)
            FROM transfer JOIN hook ON hook.event = \(event.rawValue) AND (hook.partner IS NULL OR hook.partner = transfer.partner)
            WHERE transfer.id = \(id)
            """)
    }

    /// Inserts `event` in the transaction of `connection`, chained to the event before it
    /// (`wharf_append_audit`). The chain's head stays locked until the transaction ends, so
    /// every node appends in one order: make this the transaction's last statement.
    static func insert(_ event: AuditEvent, _ connection: PostgresConnection) async throws {
        for try await _ in try await connection.execute(AppendAuditStatement(event: event), logger: quiet) {}
    }
}
