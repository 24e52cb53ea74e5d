import Foundation
import Testing
import WharfCore
import WharfTestSupport
@testable import WharfPostgres

/// One leader at a time, and a schedule's slot fired once whichever node takes it.
@Suite struct PostgresLeadershipTests {
    @Test func oneNodeLeadsUntilItsLeaseRunsOutOrItStepsDown() async throws {
        let server = try await PostgresTransferQueueTests.migratedServer()
        try await PostgresStoreTests.withNodesAAndB(server) { a, b in
            let now = Date()
            #expect(try a.lead(now: now, for: 15))
            #expect(try b.lead(now: now.addingTimeInterval(1), for: 15) == false)
            #expect(try a.lead(now: now.addingTimeInterval(10), for: 15), "the holder renews")
            #expect(try b.lead(now: now.addingTimeInterval(20), for: 15) == false, "renewed until 25 s")
            #expect(try b.lead(now: now.addingTimeInterval(26), for: 15), "expired: another node takes it")
            #expect(try a.lead(now: now.addingTimeInterval(27), for: 15) == false, "the old leader learns it lost")
            #expect(try a.leader()?.node == "node-b")
            try b.stepDown()
            #expect(try a.leader() == nil)
            #expect(try a.lead(now: now.addingTimeInterval(28), for: 15), "taken at once after a step-down")
            try b.stepDown()
            #expect(try a.leader()?.node == "node-a", "a node that does not lead cannot step another down")
        }
    }

    @Test func nodesRacingForTheSameSlotFireItOnceAndAMissedSlotFiresLateOnce() async throws {
        let server = try await PostgresTransferQueueTests.migratedServer()
        try PostgresTransferQueueTests.addPartner(server, "acme")
        let slot = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 / 60).rounded(.down) * 60)
        let id = try server.psql("""
            INSERT INTO schedule (partner, cron, source_directory, pattern, keep, next_run_at, created_at)
            VALUES ('acme', '* * * * *', '/nonexistent', '*', false, to_timestamp(\(slot.timeIntervalSince1970)), now()) RETURNING id
            """)
        let scheduleID = try #require(Int64(id))
        try await onThread {
            let stores = try ["node-a", "node-b", "node-c"].map { try PostgresStoreTests.open(server, node: $0) }
            defer { stores.forEach { $0.close() } }
            // Three nodes read the same due schedule and all try to take its slot at once.
            for minute in 0..<5 {
                let now = slot.addingTimeInterval(Double(minute) * 60 + 1)
                let due = try concurrently(3) { try stores[$0].dueSchedules(now: now) }
                #expect(due.allSatisfy { $0.map(\.id) == [scheduleID] }, "minute \(minute): \(due)")
                let taken = try concurrently(3) { index in
                    try stores[index].takeSlot(of: scheduleID, slot: due[index][0].nextRunAt, next: now.addingTimeInterval(59))
                }
                #expect(taken.filter { $0 }.count == 1, "minute \(minute): \(taken)")
                // A node that read the schedule before the slot was taken cannot take it again.
                #expect(try stores[0].takeSlot(of: scheduleID, slot: due[0][0].nextRunAt, next: now.addingTimeInterval(59)) == false)
            }
            // No node ran for three minutes (the leader died): the missed slot is due, and fires once, late.
            let late = slot.addingTimeInterval(5 * 60 + 180)
            let due = try stores[1].dueSchedules(now: late)
            #expect(due.count == 1)
            #expect(try stores[1].takeSlot(of: scheduleID, slot: due[0].nextRunAt, next: late.addingTimeInterval(59)))
            #expect(try stores[2].dueSchedules(now: late).isEmpty)
            let firings = try stores[0].firings(of: scheduleID)
            #expect(firings.count == 6)
            #expect(Set(firings.map(\.slot)).count == 6, "every slot once")
        }
    }
}
