import Foundation
import Testing
import WharfCore
import WharfTestSupport
@testable import WharfPostgres

/// A transfer queued on one node wakes the others, and still does after the database
/// restarted under them.
@Suite struct PostgresWakeupTests {
    @Test func aTransferQueuedOnOneNodeWakesAnotherAlsoAfterTheDatabaseRestarts() async throws {
        let server = try await PostgresTransferQueueTests.migratedServer()
        try PostgresTransferQueueTests.addPartner(server, "acme")
        let (a, b) = try await onThread {
            (try PostgresStoreTests.open(server, node: "node-a"), try PostgresStoreTests.open(server, node: "node-b"))
        }
        defer { a.close(); b.close() }
        // Counts node-b's wake-ups as they come; the first says its listener is up.
        let wakeups = Counter()
        let stream = b.queueWakeups()
        let listening = Task { for await _ in stream { wakeups.increment() } }
        defer { listening.cancel() }
        try await Wait.until(timeout: .seconds(30), "node-b to listen") { wakeups.value >= 1 }
        let queued = Counter()
        func queueOne() async throws {
            let index = queued.value
            _ = try await onThread {
                try a.enqueue(
                    Transfer(id: "t\(index)", partner: "acme", filename: "f\(index)", size: 1, sha256: String(repeating: "a", count: 64)),
                    sentBy: nil, install: {}
                )
            }
            queued.increment()
        }
        try await queueOne()
        try await Wait.until(timeout: .seconds(30), "a wake-up for t0") { wakeups.value >= 2 }

        try await server.stop()
        try await server.start()
        // node-b's listener connects again by itself and says so; then a new transfer wakes it.
        try await Wait.until(timeout: .seconds(60), "node-b to listen again") { wakeups.value >= 3 }
        var queuedAgain = false
        for _ in 0..<600 where !queuedAgain {
            queuedAgain = (try? await queueOne()) != nil
            if !queuedAgain { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(queuedAgain)
        try await Wait.until(timeout: .seconds(30), "a wake-up after the restart") { wakeups.value >= 4 }
    }
}
