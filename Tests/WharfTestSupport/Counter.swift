import Synchronization

/// A count shared by concurrent tasks.
public final class Counter: Sendable {
    public init() {}

    private let count = Mutex(0)

    public func increment() { count.withLock { $0 += 1 } }
    public var value: Int { count.withLock { $0 } }
}
