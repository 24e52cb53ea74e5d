import Foundation

/// When to try a failed delivery again, and when to give up.
///
/// Exponential backoff with full jitter: the wait before retry `n` (1-based) is a random
/// time between zero and `min(cap, initial × 2^(n-1))`, and never less than what the
/// receiver asked for in `Retry-After`. A transfer dies after `maxAttempts` attempts or
/// once it is older than `maxAge`.
public struct RetryPolicy: Sendable, Equatable {
    /// The upper bound of the first retry's wait, in seconds.
    public var initialDelay: Double = 30
    /// The largest wait, in seconds.
    public var maximumDelay: Double = 30 * 60
    public var maxAttempts: Int = 20
    /// The oldest a transfer gets before it dies, in seconds.
    public var maxAge: Double = 72 * 3600

    public init() {}

    public init(initialDelay: Double, maximumDelay: Double, maxAttempts: Int, maxAge: Double) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.maxAttempts = maxAttempts
        self.maxAge = maxAge
    }

    /// What to do after attempt number `attempts` of a transfer created at `createdAt`
    /// failed transiently at `now`.
    ///
    /// - Parameter random: a number in `0..<1`; the jitter.
    public func afterTransientFailure(
        attempts: Int, createdAt: Date, now: Date, retryAfter: Double?, random: Double
    ) -> Decision {
        if attempts >= maxAttempts {
            return .giveUp("gave up after \(attempts) attempts")
        }
        let ceiling = min(maximumDelay, initialDelay * pow(2, Double(max(0, attempts - 1))))
        let wait = max(ceiling * random, retryAfter ?? 0)
        let next = now.addingTimeInterval(wait)
        if next.timeIntervalSince(createdAt) > maxAge {
            return .giveUp("gave up: the next attempt would come after the maximum age of \(Self.describe(maxAge))")
        }
        return .retry(at: next)
    }

    public enum Decision: Sendable, Equatable {
        case retry(at: Date)
        case giveUp(String)
    }

    public static func describe(_ seconds: Double) -> String {
        if seconds >= 3600, seconds.truncatingRemainder(dividingBy: 3600) == 0 { return "\(Int(seconds / 3600)) h" }
        if seconds >= 60, seconds.truncatingRemainder(dividingBy: 60) == 0 { return "\(Int(seconds / 60)) min" }
        return "\(Int(seconds)) s"
    }
}
