import Foundation
import Testing
import WharfCore
import WharfTestSupport
@testable import WharfPostgres

/// The queue several nodes share: leased claims, per-partner limits across nodes, rescue.
@Suite struct PostgresTransferQueueTests {
    /// A server whose database has the registry's schema.
    static func migratedServer() async throws -> PostgresServer {
        let server = try await PostgresServer()
        try await onThread { try PostgresStoreTests.open(server, node: "setup").close() }
        return server
    }

    static func addPartner(_ server: PostgresServer, _ name: String, maxDeliveries: Int? = nil) throws {
        try server.psql("""
            INSERT INTO partner (name, display_name, url, created_at, updated_at, max_deliveries)
            VALUES ('\(name)', '\(name)', 'https://\(name).example', now(), now(), \(maxDeliveries.map(String.init) ?? "NULL"))
            """)
    }

    static func queue(_ store: PostgresStore, partner: String, count: Int, at date: Date = Date()) throws -> [Transfer] {
        try (0..<count).map { index in
            let transfer = Transfer(
                id: "\(partner)-\(index)", partner: partner, filename: "file-\(index).csv", size: 10,
                sha256: String(repeating: "a", count: 64), createdAt: date.addingTimeInterval(Double(index) / 1000)
            )
            try store.enqueue(transfer, sentBy: nil, install: {})
            return transfer
        }
    }

    /// A hook on `event` (of `partner`'s transfers, or every partner's) for each pair.
    static func addHooks(_ server: PostgresServer, _ hooks: [(event: String, partner: String?)]) throws {
        let rows = hooks.map { "('\($0.event)', \($0.partner.map { "'\($0)'" } ?? "NULL"), '/bin/true', 1, 1, 1, now())" }
        try server.psql("""
            INSERT INTO hook (event, partner, exec, max_attempts, retry_initial_seconds, timeout_seconds, created_at)
            VALUES \(rows.joined(separator: ", "))
            """)
    }

    /// `count` transfers of `partner`, queued at `date` and claimed by `store` a second later.
    static func queuedAndClaimed(_ store: PostgresStore, partner: String, count: Int, at date: Date) throws -> [Transfer] {
        let queued = try queue(store, partner: partner, count: count, at: date)
        let claimed = try store.claimDue(now: date.addingTimeInterval(1), defaultPerPartner: count, limit: count).transfers
        try #require(claimed.map(\.id) == queued.map(\.id))
        return claimed
    }

    static func attempt(_ transfer: Transfer, at date: Date) -> DeliveryAttempt {
        DeliveryAttempt(
            transferID: transfer.id, number: transfer.attempts + 1, startedAt: date, duration: 0.01, curlCode: 0,
            httpStatus: 201, bytesSent: transfer.size, error: nil
        )
    }

    /// Nodes `node-a` and `node-b` on one database with partners `acme` (at most three
    /// deliveries at once) and `globex` (the default, two).
    static func twoNodesAndTwoPartners() async throws -> (PostgresServer, [PostgresStore]) {
        let server = try await migratedServer()
        try addPartner(server, "acme", maxDeliveries: 3)
        try addPartner(server, "globex")
        let stores = try await onThread {
            try ["node-a", "node-b"].map { try PostgresStoreTests.open(server, node: $0) }
        }
        return (server, stores)
    }

    @Test func twoNodesClaimingAtOnceNeverShareATransfer() async throws {
        let (server, stores) = try await Self.twoNodesAndTwoPartners()
        defer { stores.forEach { $0.close() } }
        let queued = try await onThread {
            try Self.queue(stores[0], partner: "acme", count: 30) + Self.queue(stores[1], partner: "globex", count: 30)
        }
        let claimed = try await onThread {
            try concurrently(2) { index -> [String] in
                let store = stores[index]
                var mine: [String] = []
                while true {
                    let claim = try store.claimDue(now: Date(), defaultPerPartner: 2, limit: 4)
                    if claim.transfers.isEmpty {
                        // Nothing due and nothing sending anywhere: the queue is done.
                        if try server.psql("SELECT count(*) FROM transfer WHERE state <> 'delivered'") == "0" { return mine }
                        continue
                    }
                    for transfer in claim.transfers {
                        mine.append(transfer.id)
                        try store.finish(
                            transfer, attempt: Self.attempt(transfer, at: Date()), outcome: .delivered(receipt: "{}"),
                            claimingNext: nil, install: {}
                        )
                    }
                }
            }
        }
        let all = claimed.flatMap { $0 }
        #expect(all.count == queued.count, "\(claimed.map(\.count))")
        #expect(Set(all) == Set(queued.map(\.id)))
        #expect(!claimed[0].isEmpty && !claimed[1].isEmpty, "both nodes claimed: \(claimed.map(\.count))")
        #expect(try server.psql("SELECT count(*) FROM delivery_attempt") == "\(queued.count)")
        #expect(try server.psql("SELECT count(*) FROM transfer WHERE state = 'delivered' AND attempts = 1 AND lease_owner IS NULL") == "\(queued.count)")
        try Self.expectAuditChainHolds(server, events: queued.count)
    }

    @Test func claimsMadeAtTheSameMomentOnTwoNodesHoldEachPartnersLimitTogether() async throws {
        let (server, stores) = try await Self.twoNodesAndTwoPartners()
        defer { stores.forEach { $0.close() } }
        let start = Date()
        _ = try await onThread {
            try Self.queue(stores[0], partner: "acme", count: 60, at: start) + Self.queue(stores[1], partner: "globex", count: 60, at: start)
        }
        for round in 0..<20 {
            // Both nodes claim at once, each as much as it may; together, and with what
            // is still sending from the round before, they must not pass any partner's limit.
            let claims = try await onThread {
                try concurrently(2) { index in try stores[index].claimDue(now: start.addingTimeInterval(1), defaultPerPartner: 2, limit: 10) }
            }
            let sending = try server.psql("SELECT partner || '=' || count(*) FROM transfer WHERE state = 'sending' GROUP BY partner ORDER BY partner")
            #expect(sending == "acme=3\nglobex=2", "round \(round), claimed \(claims.map { $0.transfers.map(\.id) })")
            // One delivery of each partner ends; the others stay sending into the next round.
            try await onThread {
                let leases = try stores[0].leases()
                for partner in ["acme", "globex"] {
                    let id = try #require(leases.keys.filter { $0.hasPrefix(partner + "-") }.sorted().first)
                    let owner = try #require(stores.first { $0.node == leases[id]?.owner })
                    let claimed = try #require(try owner.transfer(id: id))
                    try owner.finish(
                        claimed, attempt: Self.attempt(claimed, at: start), outcome: .delivered(receipt: "{}"), claimingNext: nil, install: {}
                    )
                }
            }
        }
    }

    @Test func aClaimTakesDueTransfersOfActivePushPartnersOldestFirstAndThoseOfAPartnerThatIsGone() async throws {
        let server = try await Self.migratedServer()
        try Self.addPartner(server, "acme", maxDeliveries: 5)
        try Self.addPartner(server, "initech")
        try Self.addPartner(server, "umbrella")
        try server.psql("UPDATE partner SET status = 'disabled' WHERE name = 'initech'")
        try server.psql("UPDATE partner SET delivery_mode = 'pull' WHERE name = 'umbrella'")
        try await onThread {
            let a = try PostgresStoreTests.open(server, node: "node-a")
            defer { a.close() }
            let now = Date()
            let acme = try Self.queue(a, partner: "acme", count: 3, at: now.addingTimeInterval(-10))
            _ = try Self.queue(a, partner: "initech", count: 1, at: now.addingTimeInterval(-30))
            _ = try Self.queue(a, partner: "umbrella", count: 1, at: now.addingTimeInterval(-30))
            // A partner removed since its transfer was queued: claimed, so the worker can end it.
            let gone = try Self.queue(a, partner: "gone", count: 1, at: now.addingTimeInterval(-5))
            let later = Transfer(
                id: "acme-later", partner: "acme", filename: "later.csv", size: 10, sha256: String(repeating: "a", count: 64),
                createdAt: now.addingTimeInterval(-20)
            )
            try a.enqueue(later, sentBy: nil, install: {})
            try server.psql("UPDATE transfer SET state = 'retrying', next_attempt_at = now() + interval '1 hour' WHERE id = 'acme-later'")

            let first = try a.claimDue(now: now, defaultPerPartner: 2, limit: 2)
            #expect(first.transfers.map(\.id) == [acme[0].id, acme[1].id])
            let rest = try a.claimDue(now: now, defaultPerPartner: 2, limit: 10)
            #expect(rest.transfers.map(\.id) == [acme[2].id, gone[0].id])
            #expect(try a.claimDue(now: now, defaultPerPartner: 2, limit: 10).transfers.isEmpty)
            #expect(try server.psql("SELECT id FROM transfer WHERE state = 'sending' ORDER BY id")
                == "acme-0\nacme-1\nacme-2\ngone-0")
            #expect(first.partnerGeneration == (try a.partnerGeneration()))
        }
    }

    /// Every event follows the one before it, as `AuditChain` computes.
    static func expectAuditChainHolds(_ server: PostgresServer, events: Int) throws {
        let rows = try server.psql("""
            SELECT json_build_array(round(extract(epoch FROM at) * 1000), kind, outcome, status, partner, subject,
                                    fingerprint, remote_address, detail, actor, command, previous_hash, hash)
            FROM audit_event ORDER BY id
            """).split(separator: "\n")
        #expect(rows.count == events)
        var previous = ""
        for row in rows {
            let fields = try #require(try JSONSerialization.jsonObject(with: Data(row.utf8)) as? [Any])
            func text(_ index: Int) -> String? { fields[index] as? String }
            let event = AuditEvent(
                at: Date(), kind: AuditEvent.Kind(rawValue: text(1)!)!, outcome: AuditEvent.Outcome(rawValue: text(2)!)!,
                status: fields[3] as? Int, partner: text(4), subject: text(5), fingerprint: text(6), remoteAddress: text(7),
                detail: text(8), actor: text(9), command: text(10)
            )
            #expect(text(11) == previous)
            // PostgreSQL keeps microseconds: the chain has the time to the millisecond.
            let at = Date(timeIntervalSince1970: try #require(fields[0] as? Double) / 1000).registryText
            let hash = AuditChain.hash(previous: previous, canonical: AuditChain.canonical(event, at: at))
            #expect(text(12) == hash)
            previous = hash
        }
    }

    @Test func aLeaseThatRunsOutGoesBackToTheQueueAndOnlyItsNewOwnerFinishesIt() async throws {
        let server = try await Self.migratedServer()
        try Self.addPartner(server, "acme")
        try await onThread {
            let a = try PostgresStoreTests.open(server, node: "node-a", lease: 30)
            let b = try PostgresStoreTests.open(server, node: "node-b", lease: 30)
            defer { a.close(); b.close() }
            let now = Date()
            _ = try Self.queue(a, partner: "acme", count: 1, at: now)
            let first = try #require(try a.claimDue(now: now, defaultPerPartner: 2, limit: 10).transfers.first)
            #expect(try b.claimDue(now: now, defaultPerPartner: 2, limit: 10).transfers.isEmpty)
            #expect(try b.rescueExpiredClaims(now: now.addingTimeInterval(29)) == 0)
            #expect(try b.rescueExpiredClaims(now: now.addingTimeInterval(31)) == 1)
            let rescued = try #require(try b.transfer(id: first.id))
            #expect(rescued.state == .retrying)
            #expect(rescued.lastError?.contains("node-a") == true)
            let second = try #require(try b.claimDue(now: now.addingTimeInterval(31), defaultPerPartner: 2, limit: 10).transfers.first)
            #expect(second.id == first.id)
            #expect(try b.leases()[first.id]?.owner == "node-b")
            // node-a comes back from a long pause: its finish and its renewal are refused,
            // and leave nothing behind.
            let error = try #require(throws: WharfError.self) {
                try a.finish(first, attempt: Self.attempt(first, at: now), outcome: .delivered(receipt: "{}"), claimingNext: nil, install: {})
            }
            #expect(error.code == .conflict)
            #expect(error.problem.contains("node-b"), "\(error)")
            #expect(try a.renewClaims([first.id], now: now.addingTimeInterval(32)).isEmpty)
            #expect(try server.psql("SELECT count(*) FROM delivery_attempt") == "0")
            #expect(try server.psql("SELECT count(*) FROM audit_event") == "0")
            try b.finish(second, attempt: Self.attempt(second, at: now), outcome: .delivered(receipt: "{}"), claimingNext: nil, install: {})
            #expect(try b.transfer(id: first.id)?.state == .delivered)
        }
    }

    @Test func aFinishRecordsTheAttemptTheOutcomeItsHookEventsAndItsAuditEventTogether() async throws {
        let server = try await Self.migratedServer()
        try Self.addPartner(server, "acme", maxDeliveries: 5)
        try Self.addPartner(server, "globex")
        // Hooks on the end of acme's transfers, and one on globex's, which acme's must not wake.
        try Self.addHooks(server, [("delivered", nil), ("dead", "acme"), ("delivered", "globex")])
        try await onThread {
            let a = try PostgresStoreTests.open(server, node: "node-a")
            defer { a.close() }
            let now = Date()
            let claimed = try Self.queuedAndClaimed(a, partner: "acme", count: 3, at: now)
            let (delivered, retried, dead) = (claimed[0], claimed[1], claimed[2])
            let retryAt = now.addingTimeInterval(60)

            try a.finish(delivered, attempt: Self.attempt(delivered, at: now), outcome: .delivered(receipt: "{\"id\":\"r1\"}", signature: "jws"),
                         claimingNext: nil, install: {})
            var broken = Self.attempt(retried, at: now)
            broken.uploadLocation = "https://acme.example/uploads/7"
            try a.finish(retried, attempt: broken, outcome: .retry(at: retryAt, reason: "HTTP 503"), claimingNext: nil, install: {})
            try a.finish(dead, attempt: Self.attempt(dead, at: now), outcome: .dead(reason: "HTTP 403"), claimingNext: nil, install: {})

            let one = try #require(try a.transfer(id: delivered.id))
            #expect(one.state == .delivered)
            #expect(one.receipt == "{\"id\":\"r1\"}")
            #expect(one.receiptSignature == "jws")
            #expect(one.deliveredAt != nil)
            #expect(one.attempts == 1)
            #expect(one.nextAttemptAt == nil)
            let two = try #require(try a.transfer(id: retried.id))
            #expect(two.state == .retrying)
            #expect(two.nextAttemptAt == retryAt.roundedToMilliseconds)
            #expect(two.lastError == "HTTP 503")
            #expect(two.uploadLocation == "https://acme.example/uploads/7")
            #expect(two.receipt == nil)
            let three = try #require(try a.transfer(id: dead.id))
            #expect(three.state == .dead)
            #expect(three.lastError == "HTTP 403")
            #expect(try a.leases().isEmpty)

            #expect(try server.psql("SELECT transfer_id, number, http_status FROM delivery_attempt ORDER BY transfer_id")
                == "acme-0|1|201\nacme-1|1|201\nacme-2|1|201")
            #expect(try server.psql("SELECT event, subject_id, coalesce(reason, '') FROM hook_event ORDER BY subject_id")
                == "delivered|acme-0|\ndead|acme-2|HTTP 403")
            #expect(try server.psql("SELECT outcome FROM audit_event ORDER BY id") == "delivered\nretrying\ndead")
            #expect(try a.verifyAudit() == 3)
        }
    }

    @Test func finishesMadeInOneStatementEachKeepTheirOwnOutcome() async throws {
        let server = try await Self.migratedServer()
        try Self.addPartner(server, "acme", maxDeliveries: 5)
        try Self.addPartner(server, "globex")
        try Self.addHooks(server, [("delivered", nil)])
        try await onThread {
            let a = try PostgresStoreTests.open(server, node: "node-a")
            defer { a.close() }
            let now = Date()
            let claimed = try Self.queuedAndClaimed(a, partner: "acme", count: 3, at: now)
            let queued = try Self.queue(a, partner: "globex", count: 1, at: now)
            func finish(_ transfer: Transfer, _ outcome: AttemptOutcome) -> FinishStatement.Finish {
                FinishStatement.Finish(
                    transfer: transfer, attempt: Self.attempt(transfer, at: now), outcome: outcome,
                    event: AuditEvent.delivery(transfer, outcome: outcome, status: 201)
                )
            }
            // The third, never claimed, is still queued: its finish is refused, the others' not.
            let made = try a.finishTogether([
                finish(claimed[0], .delivered(receipt: "{\"id\":\"r0\"}", signature: nil)),
                finish(claimed[1], .retry(at: now.addingTimeInterval(60), reason: "HTTP 503")),
                finish(queued[0], .delivered(receipt: "{}", signature: nil)),
                finish(claimed[2], .dead(reason: "HTTP 403")),
            ])
            #expect(made == [true, true, false, true])
            #expect(try a.transfer(id: "acme-0")?.state == .delivered)
            #expect(try a.transfer(id: "acme-0")?.receipt == "{\"id\":\"r0\"}")
            #expect(try a.transfer(id: "acme-1")?.state == .retrying)
            #expect(try a.transfer(id: "acme-1")?.lastError == "HTTP 503")
            #expect(try a.transfer(id: "acme-2")?.state == .dead)
            #expect(try a.transfer(id: "globex-0")?.state == .queued)
            #expect(try a.transfer(id: "globex-0")?.attempts == 0)
            #expect(try server.psql("SELECT transfer_id FROM delivery_attempt ORDER BY transfer_id") == "acme-0\nacme-1\nacme-2")
            #expect(try server.psql("SELECT subject_id FROM hook_event") == "acme-0")
            #expect(try server.psql("SELECT count(*) FROM audit_event") == "3")
            #expect(try a.verifyAudit() == 3)
            // Through `finish`, the refused one says why.
            let error = try #require(throws: WharfError.self) {
                try a.finish(queued[0], attempt: Self.attempt(queued[0], at: now), outcome: .delivered(receipt: "{}"),
                             claimingNext: nil, install: {})
            }
            #expect(error.problem.contains("queued"), "\(error)")
        }
    }

    @Test func finishesFromManyThreadsAtOnceAreAllRecordedOnceWithAnUnbrokenAuditChain() async throws {
        let server = try await Self.migratedServer()
        try Self.addPartner(server, "acme", maxDeliveries: 40)
        try await onThread {
            let a = try PostgresStoreTests.open(server, node: "node-a")
            defer { a.close() }
            let now = Date()
            let claimed = try Self.queuedAndClaimed(a, partner: "acme", count: 40, at: now)
            _ = try concurrently(40) { index in
                try a.finish(claimed[index], attempt: Self.attempt(claimed[index], at: now), outcome: .delivered(receipt: "{}"),
                             claimingNext: nil, install: {})
            }
            #expect(try server.psql("SELECT count(*) FROM transfer WHERE state = 'delivered' AND attempts = 1") == "40")
            #expect(try server.psql("SELECT count(DISTINCT transfer_id), count(*) FROM delivery_attempt") == "40|40")
            #expect(try a.verifyAudit() == 40)
        }
    }

    @Test func aRenewedLeaseIsNotTakenBack() async throws {
        let server = try await Self.migratedServer()
        try Self.addPartner(server, "acme")
        try await onThread {
            let a = try PostgresStoreTests.open(server, node: "node-a", lease: 30)
            defer { a.close() }
            let now = Date()
            _ = try Self.queue(a, partner: "acme", count: 1, at: now)
            let claimed = try #require(try a.claimDue(now: now, defaultPerPartner: 2, limit: 10).transfers.first)
            #expect(try a.renewClaims([claimed.id], now: now.addingTimeInterval(20)) == [claimed.id])
            #expect(try a.rescueExpiredClaims(now: now.addingTimeInterval(40)) == 0)
            #expect(try a.rescueExpiredClaims(now: now.addingTimeInterval(51)) == 1)
        }
    }

    @Test func aRestartedNodeTakesBackItsOwnClaimsAndLeavesAnotherNodesLiveOnes() async throws {
        let server = try await Self.migratedServer()
        try Self.addPartner(server, "acme", maxDeliveries: 5)
        try await onThread {
            let a = try PostgresStoreTests.open(server, node: "node-a")
            let b = try PostgresStoreTests.open(server, node: "node-b")
            defer { a.close(); b.close() }
            let now = Date()
            _ = try Self.queue(a, partner: "acme", count: 2, at: now)
            let mine = try #require(try a.claimDue(now: now.addingTimeInterval(1), defaultPerPartner: 2, limit: 1).transfers.first)
            let theirs = try #require(try b.claimDue(now: now.addingTimeInterval(1), defaultPerPartner: 2, limit: 1).transfers.first)
            #expect(try a.recoverInterrupted(now: now.addingTimeInterval(2)) == 1)
            #expect(try a.transfer(id: mine.id)?.state == .retrying)
            #expect(try a.leases()[theirs.id]?.owner == "node-b")
        }
    }

    @Test func aTransitionTheStateDoesNotAllowChangesNothing() async throws {
        let server = try await Self.migratedServer()
        try Self.addPartner(server, "acme")
        try await onThread {
            let a = try PostgresStoreTests.open(server, node: "node-a")
            defer { a.close() }
            let transfer = try Self.queue(a, partner: "acme", count: 1)[0]
            let error = try #require(throws: WharfError.self) { try a.release(transfer.id, retryAt: Date(), reason: "x") }
            #expect(error.code == .transitionRefused)
            let missing = try #require(throws: WharfError.self) { try a.kill("nope", reason: "x") }
            #expect(missing.code == .notFound)
            #expect(try a.retry(transfer.id, now: Date()).state == .queued)
            try a.cancel(transfer.id, remove: {})
            #expect(try a.transfer(id: transfer.id)?.state == .cancelled)
            let finished = try #require(throws: WharfError.self) { try a.retry(transfer.id, now: Date()) }
            #expect(finished.code == .transitionRefused)
            #expect(try a.transfer(id: transfer.id)?.state == .cancelled)
        }
    }
}
