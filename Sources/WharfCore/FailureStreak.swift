import Synchronization

/// A loop's failures in a row, so that an outage is logged when it starts and when it
/// ends rather than at every retry.
public final class FailureStreak: Sendable {
    private let count = Mutex(0)

    public init() {}

    /// Counts a failure; `true` if it is the first of a streak (the one to log).
    public func failed() -> Bool {
        count.withLock { count in
            count += 1
            return count == 1
        }
    }

    /// Ends a streak; the number of failures it had (`0` if there was none).
    public func succeeded() -> Int {
        count.withLock { count in
            defer { count = 0 }
            return count
        }
    }
}
