import Foundation

/// Something a client address did that a partner in good standing does not do, and the
/// points it scores (as SFTPGo's defender scores them).
public enum Offence: String, Sendable, CaseIterable {
    /// A TLS handshake refused: no certificate, an untrusted or expired one, no protocol in
    /// common, not TLS at all. A connection closed before it sent anything scores nothing
    /// (a load balancer's health check does that).
    case handshakeRefused = "handshake_refused"
    /// A certificate that maps to no active partner (unknown or disabled).
    case unknownPartner = "unknown_partner"
    /// A request that is not HTTP/1.1.
    case malformedRequest = "malformed_request"
    /// Over a limit: too many connections from one address.
    case limitExceeded = "limit_exceeded"
    /// Closed for being too slow: no handshake, no first request head or no body progress
    /// in time, or a body below the minimum rate. An idle keep-alive connection closed
    /// is not an offence.
    case tooSlow = "too_slow"

    public var points: Int {
        switch self {
        case .handshakeRefused, .unknownPartner, .malformedRequest: 2
        case .limitExceeded, .tooSlow: 3
        }
    }
}

/// When the defender bans an address, and for how long.
public struct DefenderPolicy: Sendable, Equatable {
    /// Points within `observation` that ban an address.
    public var threshold = 15
    public var observation: Duration = .seconds(30 * 60)
    /// The first ban's length; each later ban of the same address is longer by
    /// `increment` of it (50 %: 30, 45, 60 minutes ...).
    public var banTime: Duration = .seconds(30 * 60)
    public var increment = 0.5
    /// Addresses scored at once; past it the one seen longest ago is forgotten, so an
    /// attack from many addresses cannot grow the memory without bound.
    public var trackedAddresses = 10_000

    public init() {}

    /// How long the `times`-th ban (1 for the first) lasts.
    public func banLength(times: Int) -> TimeInterval {
        let base = Double(banTime.components.seconds)
        return base + base * increment * Double(max(0, times - 1))
    }
}

/// An address the defender banned: since when, until when, how many times so far.
public struct AddressBan: Sendable, Equatable, Codable {
    public let address: String
    public let since: Date
    /// The ban ends then; a lifted ban ends when it was lifted.
    public var until: Date
    /// Bans of this address so far, this one included (0 once an operator lifted it).
    public var times: Int
    /// The offence that crossed the threshold.
    public var reason: String

    public init(address: String, since: Date, until: Date, times: Int, reason: String) {
        self.address = address
        self.since = since
        self.until = until
        self.times = times
        self.reason = reason
    }

    public func isActive(at now: Date) -> Bool { until > now }
}

/// The defender's memory: scores per address and the bans in force. A value, fed with
/// offences and the clock; it decides, the listener carries out (closing, storing bans).
public struct DefenderLedger: Sendable {
    public let policy: DefenderPolicy
    private var scores: [String: [(at: Date, points: Int)]] = [:]
    private var lastSeen: [String: Date] = [:]
    private(set) var bans: [String: AddressBan] = [:]

    public init(policy: DefenderPolicy = DefenderPolicy()) {
        self.policy = policy
    }

    /// Whether `address` is banned at `now`.
    public func isBanned(_ address: String, at now: Date) -> Bool {
        bans[address]?.isActive(at: now) ?? false
    }

    /// Scores `offence` for `address`; returns the ban it brings about, if it crosses the
    /// threshold. An address already banned scores nothing more.
    public mutating func score(_ offence: Offence, from address: String, at now: Date) -> AddressBan? {
        if isBanned(address, at: now) { return nil }
        let window = Double(policy.observation.components.seconds)
        var events = (scores[address] ?? []).filter { now.timeIntervalSince($0.at) < window }
        events.append((now, offence.points))
        lastSeen[address] = now
        guard events.reduce(0, { $0 + $1.points }) >= policy.threshold else {
            scores[address] = events
            forgetOldest()
            return nil
        }
        scores[address] = nil
        let times = (bans[address]?.times ?? 0) + 1
        let ban = AddressBan(address: address, since: now, until: now.addingTimeInterval(policy.banLength(times: times)), times: times, reason: offence.rawValue)
        bans[address] = ban
        return ban
    }

    /// Takes in the bans as stored (made by another node, or lifted by an operator): a
    /// stored ban as recent as the one remembered wins; one remembered but not stored yet
    /// stays. A lifted ban also clears the address's score.
    public mutating func merge(stored: [AddressBan], at now: Date) {
        for ban in stored {
            // A store may keep times to the millisecond: within one, it is the same ban.
            if let known = bans[ban.address], known.since.timeIntervalSince(ban.since) > 0.001 { continue }
            if bans[ban.address]?.isActive(at: now) == true && !ban.isActive(at: now) {
                scores[ban.address] = nil
            }
            bans[ban.address] = ban
        }
        // Expired bans are kept a while (they make the next ban longer); not for ever.
        let keep = Double(policy.observation.components.seconds) * 48
        bans = bans.filter { now.timeIntervalSince($0.value.until) < keep }
    }

    /// Forgets the address seen longest ago while more are tracked than the policy allows.
    private mutating func forgetOldest() {
        guard lastSeen.count > policy.trackedAddresses,
              let oldest = lastSeen.min(by: { $0.value < $1.value })?.key else { return }
        lastSeen[oldest] = nil
        scores[oldest] = nil
    }
}
