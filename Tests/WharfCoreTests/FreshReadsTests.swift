import Foundation
import Testing
import WharfCore

/// Concurrent askers sharing reads, each given a value read after it asked.
@Suite struct FreshReadsTests {
    /// Reads the test lets finish one at a time, numbered from 1 in the order they start;
    /// counts how many ran at once.
    final class HeldReads: @unchecked Sendable {
        private let lock = NSLock()
        private var held: [CheckedContinuation<Void, Never>] = []
        private var started = 0
        private var running = 0
        private(set) var mostAtOnce = 0
        /// Reads that fail instead of giving their number.
        var failing: Set<Int> = []

        func read() async throws -> Int {
            let number = lock.withLock {
                started += 1
                running += 1
                mostAtOnce = max(mostAtOnce, running)
                return started
            }
            await withCheckedContinuation { continuation in lock.withLock { held.append(continuation) } }
            lock.withLock { running -= 1 }
            if lock.withLock({ failing.contains(number) }) {
                throw WharfError(.unavailable, "read \(number) failed")
            }
            return number
        }

        /// Lets the read now held finish, once it is held.
        func finishOne() async throws {
            try await waitUntil("a read is held") { lock.withLock { !held.isEmpty } }
            lock.withLock { held.removeFirst() }.resume()
        }

        var atOnce: Int { lock.withLock { mostAtOnce } }
    }

    /// Waits (at most 60 s, polling) until `condition` holds.
    static func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = Date().addingTimeInterval(60)
        while !condition() {
            guard Date() < deadline else { throw WharfError(.unavailable, "gave up waiting until \(what)") }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    /// Asks once, and `others` times more while that first read runs.
    static func askWhileTheFirstReads(
        _ reads: FreshReads<Int>, others: Int
    ) async throws -> (first: Task<Int, any Error>, others: [Task<Int, any Error>]) {
        let first = Task { try await reads.value() }
        try await waitUntil("the first read runs") { reads.counts == (reads: 1, waiting: 0) }
        let asked = (0..<others).map { _ in Task { try await reads.value() } }
        try await waitUntil("\(others) ask while it runs") { reads.counts.waiting == others }
        return (first, asked)
    }

    @Test func askersWhileAReadRunsShareTheNextAndNoneGetsAValueReadBeforeItAsked() async throws {
        let held = HeldReads()
        let reads = FreshReads { try await held.read() }
        let (first, others) = try await Self.askWhileTheFirstReads(reads, others: 3)
        try await held.finishOne()
        #expect(try await first.value == 1)
        try await held.finishOne()
        for other in others {
            #expect(try await other.value == 2)
        }
        #expect(reads.counts == (reads: 2, waiting: 0))
        #expect(held.atOnce == 1)
    }

    @Test func aReadThatFailsFailsItsOwnAskersOnlyAndTheNextAskReadsAgain() async throws {
        let held = HeldReads()
        held.failing = [2]
        let reads = FreshReads { try await held.read() }
        let (first, failed) = try await Self.askWhileTheFirstReads(reads, others: 2)
        try await held.finishOne()
        try await held.finishOne()
        #expect(try await first.value == 1)
        for asker in failed {
            await #expect(throws: WharfError.self) { try await asker.value }
        }
        let later = Task { try await reads.value() }
        try await held.finishOne()
        #expect(try await later.value == 3)
        #expect(reads.counts == (reads: 3, waiting: 0))
    }
}
