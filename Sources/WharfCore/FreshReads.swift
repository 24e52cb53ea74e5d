import Foundation

/// One read of a value for concurrent askers, never older than the ask: a caller that finds
/// no read running starts one; callers that ask while a read runs share the next, which
/// starts when that one ends. Each caller thus gets a value read after it asked, as if it
/// had read alone, and a burst of askers costs two reads, not one each.
///
/// For the listener's partner generation, read at every TLS handshake: on PostgreSQL a
/// round trip each, which concurrent handshakes would otherwise make one after another.
///
/// A read that throws gives its error to the callers it was read for, and to no later one.
/// Unlike `CallBatches`, whose callers block a thread each, waiting callers here hold no
/// thread: they are suspended until their read ends.
public final class FreshReads<Value: Sendable>: @unchecked Sendable {
    // `waiting`, `reading` and `reads` are guarded by `lock`.
    private let lock = NSLock()
    private var waiting: [CheckedContinuation<Value, any Error>] = []
    private var reading = false
    private var reads = 0
    private let read: @Sendable () async throws -> Value

    public init(_ read: @escaping @Sendable () async throws -> Value) {
        self.read = read
    }

    /// The value, from a read that started after this call.
    public func value() async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            let starts = lock.withLock {
                waiting.append(continuation)
                defer { reading = true }
                return !reading
            }
            if starts {
                Task { await self.readWhileAsked() }
            }
        }
    }

    /// Reads for the callers waiting, then for those who asked meanwhile, until none did.
    private func readWhileAsked() async {
        while let askers = nextAskers() {
            let outcome: Result<Value, any Error>
            do {
                outcome = .success(try await read())
            } catch {
                outcome = .failure(error)
            }
            for asker in askers {
                asker.resume(with: outcome)
            }
        }
    }

    private func nextAskers() -> [CheckedContinuation<Value, any Error>]? {
        lock.withLock {
            guard !waiting.isEmpty else {
                reading = false
                return nil
            }
            defer { waiting = [] }
            reads += 1
            return waiting
        }
    }

    /// Reads started so far, and callers not yet given to one.
    public var counts: (reads: Int, waiting: Int) {
        lock.withLock { (reads, waiting.count) }
    }
}
