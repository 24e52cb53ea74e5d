import Foundation
import Testing
import WharfCore
import WharfTestSupport
@testable import WharfPostgres

/// The audit trail, bans, resumable uploads and hook events on the shared registry.
@Suite struct PostgresSharedPortsTests {
    static func event(_ index: Int, node: String) -> AuditEvent {
        AuditEvent(
            kind: .refusal, outcome: .refused, status: 403, partner: nil, subject: "CN=stranger \(index)", fingerprint: nil,
            remoteAddress: "192.0.2.\(index % 250)", detail: "refused on \(node)"
        )
    }

    @Test func twoNodesAppendingAtOnceKeepOneAuditChainThatShowsTampering() async throws {
        let server = try await PostgresTransferQueueTests.migratedServer()
        try await onThread {
            let stores = try ["node-a", "node-b"].map { try PostgresStoreTests.open(server, node: $0) }
            defer { stores.forEach { $0.close() } }
            _ = try concurrently(2) { index in
                for batch in 0..<10 {
                    let events = (0..<5).map { Self.event(batch * 5 + $0, node: stores[index].node) }
                    try stores[index].record(contentsOf: events)
                }
            }
            #expect(try stores[0].verifyAudit() == 100)
            #expect(try stores[1].auditEvents(limit: 3).count == 3)
            let middle = try server.psql("SELECT id FROM audit_event ORDER BY id OFFSET 50 LIMIT 1")
            try server.psql("UPDATE audit_event SET detail = 'nothing happened' WHERE id = \(middle)")
            let error = try #require(throws: WharfError.self) { try stores[0].verifyAudit() }
            #expect(error.problem.contains("event \(middle)"), "\(error)")
        }
    }

    @Test func aBanOneNodeMakesEveryNodeReads() async throws {
        let server = try await PostgresTransferQueueTests.migratedServer()
        try await PostgresStoreTests.withNodesAAndB(server) { a, b in
            let now = Date()
            try a.saveBan(AddressBan(address: "192.0.2.7", since: now, until: now.addingTimeInterval(600), times: 1, reason: "handshakes"))
            try a.saveBan(AddressBan(address: "192.0.2.7", since: now, until: now.addingTimeInterval(1200), times: 2, reason: "again"))
            let bans = try b.addressBans()
            #expect(bans.count == 1)
            #expect(bans.first?.times == 2)
            #expect(bans.first?.until == now.addingTimeInterval(1200).roundedToMilliseconds)
        }
    }

    @Test func aResumableUploadsOffsetNeverGoesBackAndItsLengthStaysKnown() async throws {
        let server = try await PostgresTransferQueueTests.migratedServer()
        try PostgresTransferQueueTests.addPartner(server, "acme")
        try await onThread {
            let a = try PostgresStoreTests.open(server, node: "node-a")
            let b = try PostgresStoreTests.open(server, node: "node-b")
            defer { a.close(); b.close() }
            let upload = PartialUpload(id: "u1", partner: "acme", filename: "big.bin", length: nil, sha256: nil, idempotencyKey: "k", createdAt: Date())
            try a.createPartialUpload(upload)
            try b.recordPartialUpload(id: "u1", offset: 1000, length: 5000, at: Date())
            try a.recordPartialUpload(id: "u1", offset: 400, length: nil, at: Date())
            let recorded = try #require(try b.partialUpload(id: "u1"))
            #expect(recorded.offset == 1000)
            #expect(recorded.length == 5000)
            #expect(try a.partialUploads().map(\.id) == ["u1"])
            #expect(try a.partialUpload(id: "u2") == nil)
            try b.removePartialUpload(id: "u1")
            #expect(try a.partialUploads().isEmpty)
        }
    }

    @Test func aDeliveryQueuesItsHookEventAndOneNodeDispatchesIt() async throws {
        let server = try await PostgresTransferQueueTests.migratedServer()
        try PostgresTransferQueueTests.addPartner(server, "acme")
        try server.psql("""
            INSERT INTO hook (event, exec, max_attempts, retry_initial_seconds, timeout_seconds, created_at)
            VALUES ('delivered', '["/bin/true"]', 3, 1, 5, now())
            """)
        try await onThread {
            let stores = try ["node-a", "node-b"].map { try PostgresStoreTests.open(server, node: $0) }
            defer { stores.forEach { $0.close() } }
            let now = Date()
            _ = try PostgresTransferQueueTests.queue(stores[0], partner: "acme", count: 4, at: now)
            let claim = try stores[0].claimDue(now: now.addingTimeInterval(1), defaultPerPartner: 4, limit: 4)
            for transfer in claim.transfers {
                try stores[0].finish(
                    transfer, attempt: PostgresTransferQueueTests.attempt(transfer, at: now), outcome: .delivered(receipt: "{}"),
                    claimingNext: nil, install: {}
                )
            }
            let claimed = try concurrently(2) { index in try stores[index].claimHookEvents(now: Date().addingTimeInterval(1), margin: 10, limit: 10) }
            let events = claimed.flatMap { $0 }
            #expect(events.count == 4)
            #expect(Set(events.map(\.0.id)).count == 4, "no event went to both nodes")
            #expect(events.allSatisfy { $0.1.action == .exec(["/bin/true"]) && $0.1.timeout == 5 })
            #expect(Set(events.map(\.0.subject)) == Set(claim.transfers.map(\.id)))
            // Leased: not due again until its timeout and margin have passed.
            #expect(try stores[0].claimHookEvents(now: Date().addingTimeInterval(5), margin: 10, limit: 10).isEmpty)
            for (event, _) in events { try stores[1].finishHookEvent(event.id, outcome: .done, at: Date()) }
            #expect(try server.psql("SELECT count(*) FROM hook_event WHERE state = 'done' AND attempts = 1") == "4")
            #expect(try stores[0].claimHookEvents(now: Date().addingTimeInterval(60), margin: 10, limit: 10).isEmpty)
        }
    }

    @Test func aReceiptQueuesItsHookEventsInItsOwnCommitAndAReplayQueuesNone() async throws {
        let server = try await PostgresTransferQueueTests.migratedServer()
        try PostgresTransferQueueTests.addPartner(server, "acme")
        try PostgresTransferQueueTests.addPartner(server, "globex")
        try server.psql("""
            INSERT INTO hook (event, partner, exec, max_attempts, retry_initial_seconds, timeout_seconds, created_at) VALUES
                ('received', NULL, '["/bin/true"]', 3, 1, 5, now()),
                ('received', 'acme', '["/bin/true"]', 3, 1, 5, now()),
                ('received', 'globex', '["/bin/true"]', 3, 1, 5, now()),
                ('delivered', NULL, '["/bin/true"]', 3, 1, 5, now())
            """)
        try await onThread {
            let store = try PostgresStoreTests.open(server, node: "node-a")
            defer { store.close() }
            let receipt = PostgresInboxPortsTests.receipt("r-1", key: "key-1")
            guard case .committed = try store.commit(receipt, audit: PostgresInboxPortsTests.audit, install: {}) else {
                Issue.record("the first commit was not committed")
                return
            }
            _ = try store.commit(PostgresInboxPortsTests.receipt("r-2", key: "key-1"), audit: PostgresInboxPortsTests.audit, install: {})
            // The hook for every partner and acme's own; not globex's, not the delivered one.
            #expect(try server.psql("""
                SELECT string_agg(coalesce(hook.partner, '*') || ':' || hook_event.subject_id || ':' || hook_event.size || ':' || hook_event.stored_name, ' '
                                  ORDER BY hook.partner NULLS FIRST)
                FROM hook_event JOIN hook ON hook.id = hook_event.hook_id
                """) == "*:r-1:5:r-1-order.xml acme:r-1:5:r-1-order.xml")
            #expect(try server.psql("SELECT string_agg(outcome, ' ' ORDER BY id) FROM audit_event") == "accepted replayed")
            #expect(try store.verifyAudit() == 2)
        }
    }
}
