import Foundation

/// Runs `body` on a thread of its own and waits for it without holding a thread of Swift's
/// concurrency pool: the store's calls block, as they do on the gateway's thread pools,
/// and the PostgreSQL client they wait for needs the pool's threads.
public func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}

/// Runs `body(0)` … `body(count - 1)` on threads of their own, all at once, and returns
/// their results in that order; rethrows the first error.
public func concurrently<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) throws -> T) throws -> [T] {
    let results = ResultsBox<T>(count)
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        Thread.detachNewThread {
            let result = Result { try body(index) }
            results.lock.withLock { results.values[index] = result }
            group.leave()
        }
    }
    group.wait()
    return try results.values.map { try $0!.get() }
}

private final class ResultsBox<T>: @unchecked Sendable {
    let lock = NSLock()
    var values: [Result<T, any Error>?]
    init(_ count: Int) { values = Array(repeating: nil, count: count) }
}
