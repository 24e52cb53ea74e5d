import Foundation
import Testing
import WharfCore
import WharfTestSupport

/// Concurrent callers' calls made together, each with its own outcome.
@Suite struct CallBatchesTests {
    /// What the batches' runs were given, in order.
    final class Runs: @unchecked Sendable {
        let lock = NSLock()
        var batches: [[Int]] = []
        func record(_ calls: [Int]) { lock.withLock { batches.append(calls) } }
    }

    /// Calls `0` … `callers - 1` on threads of their own: call 0 first, alone in its batch,
    /// which holds until every other call waits for the next one. Returns each call's outcome
    /// and what each batch was given.
    static func callWhileTheFirstRuns(
        _ batches: CallBatches<Int, Int>, callers: Int, _ run: @escaping @Sendable ([Int]) throws(WharfError) -> [Int]
    ) async throws -> (outcomes: [Result<Int, WharfError>], runs: [[Int]]) {
        let runs = Runs()
        let firstRunning = DispatchSemaphore(value: 0)
        let outcomes = try await onThread {
            try concurrently(callers) { index -> Result<Int, WharfError> in
                if index > 0 {
                    firstRunning.wait()
                    firstRunning.signal()
                }
                do throws(WharfError) {
                    return .success(try batches.make(index) { calls throws(WharfError) in
                        runs.record(calls)
                        if calls == [0] {
                            firstRunning.signal()
                            try waitUntil("the \(callers - 1) others wait") { batches.counts.waiting == callers - 1 }
                        }
                        return try run(calls)
                    })
                } catch {
                    return .failure(error)
                }
            }
        }
        return (outcomes, runs.lock.withLock { runs.batches })
    }

    /// Waits (at most 60 s, polling) until `condition` holds.
    static func waitUntil(_ what: String, _ condition: () -> Bool) throws(WharfError) {
        let deadline = Date().addingTimeInterval(60)
        while !condition() {
            guard Date() < deadline else { throw WharfError(.unavailable, "gave up waiting until \(what)") }
            usleep(1_000)
        }
    }

    @Test func callsThatArriveWhileABatchRunsAreMadeTogetherInTheNextEachGettingItsOwnOutcome() async throws {
        let batches = CallBatches<Int, Int>(limit: 10)
        let (outcomes, runs) = try await Self.callWhileTheFirstRuns(batches, callers: 4) { calls in calls.map { $0 * 10 } }
        #expect(try outcomes.map { try $0.get() } == [0, 10, 20, 30])
        #expect(runs.count == 2)
        #expect(runs.first == [0])
        #expect(runs.last?.sorted() == [1, 2, 3])
        #expect(batches.counts == (batches: 2, waiting: 0))
    }

    @Test func aBatchTakesNoMoreThanItsLimitAndLeavesTheRestForTheNext() async throws {
        let batches = CallBatches<Int, Int>(limit: 2)
        let (outcomes, runs) = try await Self.callWhileTheFirstRuns(batches, callers: 6) { calls in calls }
        #expect(try outcomes.map { try $0.get() } == Array(0..<6))
        #expect(runs.map(\.count) == [1, 2, 2, 1])
        #expect(Set(runs.joined()) == Set(0..<6))
    }

    @Test func aBatchThatFailsGivesItsErrorToEveryCallInItAndNoneToTheNext() async throws {
        let batches = CallBatches<Int, Int>(limit: 10)
        let (outcomes, _) = try await Self.callWhileTheFirstRuns(batches, callers: 3) { calls throws(WharfError) in
            guard calls == [0] else { throw WharfError(.unavailable, "the batch of \(calls.sorted()) failed") }
            return calls
        }
        #expect(try outcomes[0].get() == 0)
        for failed in outcomes.dropFirst() {
            #expect(throws: WharfError.self) { try failed.get() }
            if case .failure(let error) = failed { #expect(error.problem == "the batch of [1, 2] failed") }
        }
    }
}
