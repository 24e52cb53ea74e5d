import Foundation

/// A file on its way to a partner.
///
/// States: `queued` (waiting for its first attempt), `sending` (an attempt is running),
/// `retrying` (waiting for `nextAttemptAt` after a transient failure), `delivered`,
/// `dead` (a permanent failure or retries exhausted; `transfers retry` requeues it) and
/// `cancelled`.
public struct Transfer: Sendable, Equatable, Codable {
    public enum State: String, Sendable, Codable, CaseIterable {
        case queued
        case sending
        case retrying
        case delivered
        case dead
        case cancelled

        /// Whether the transfer is finished, one way or the other.
        public var isFinal: Bool { self == .delivered || self == .dead || self == .cancelled }
    }

    public let id: String
    public let partner: String
    /// The name the file is delivered under: `PUT {url}/{filename}`.
    public let filename: String
    public let size: Int64
    public let sha256: String
    public var state: State
    /// Attempts over the transfer's whole life.
    public var attempts: Int
    /// Attempts since it was last queued (`transfers retry` starts this count again): what
    /// the retry policy counts.
    public var attemptsSinceQueued: Int
    public let createdAt: Date
    /// When it was last queued (its creation, or its last `transfers retry`): its age, which
    /// the retry policy limits, counts from here.
    public var queuedAt: Date
    public var nextAttemptAt: Date?
    /// Why the last attempt failed, in words; why a dead transfer died.
    public var lastError: String?
    /// What the receiver answered on success (a Wharf's JSON receipt, for example).
    public var receipt: String?
    /// A Wharf receiver's signature of `receipt` (a JWS), verified when it was delivered.
    public var receiptSignature: String?
    public var deliveredAt: Date?
    /// Where a Wharf receiver holds this file's resumable upload after an attempt that
    /// broke: the next attempt asks it for its offset and sends only the rest.
    public var uploadLocation: String?

    public init(
        id: String, partner: String, filename: String, size: Int64, sha256: String, state: State = .queued,
        attempts: Int = 0, attemptsSinceQueued: Int? = nil, createdAt: Date = Date(), queuedAt: Date? = nil, nextAttemptAt: Date? = nil, lastError: String? = nil,
        receipt: String? = nil, deliveredAt: Date? = nil, receiptSignature: String? = nil, uploadLocation: String? = nil
    ) {
        self.receiptSignature = receiptSignature
        self.uploadLocation = uploadLocation
        self.id = id
        self.partner = partner
        self.filename = filename
        self.size = size
        self.sha256 = sha256
        self.state = state
        self.attempts = attempts
        self.attemptsSinceQueued = attemptsSinceQueued ?? attempts
        self.createdAt = createdAt
        self.queuedAt = queuedAt ?? createdAt
        self.nextAttemptAt = nextAttemptAt
        self.lastError = lastError
        self.receipt = receipt
        self.deliveredAt = deliveredAt
    }
}

extension Transfer {
    /// A new transfer id, sortable by creation time like receipt ids, with a `t` in front.
    public static func newID(at date: Date = Date()) -> String {
        "t" + Receipt.newID(at: date)
    }
}

/// One try at delivering a transfer.
public struct DeliveryAttempt: Sendable, Equatable, Codable {
    public let transferID: String
    public let number: Int
    public let startedAt: Date
    /// Wall time of the attempt, in seconds.
    public let duration: Double
    /// libcurl's result code (0 is success); `nil` when the attempt never reached libcurl.
    public let curlCode: Int?
    /// The receiver's HTTP status, when it answered.
    public let httpStatus: Int?
    public let bytesSent: Int64
    public let error: String?
    /// For a pull partner's fetch: the address that acknowledged it.
    public let remoteAddress: String?
    /// Where the receiver holds the file's resumable upload after this attempt (the
    /// transfer's `uploadLocation` from now on); `nil` forgets it.
    public var uploadLocation: String?

    public init(
        transferID: String, number: Int, startedAt: Date, duration: Double, curlCode: Int?,
        httpStatus: Int?, bytesSent: Int64, error: String?, remoteAddress: String? = nil
    ) {
        self.transferID = transferID
        self.number = number
        self.startedAt = startedAt
        self.duration = duration
        self.curlCode = curlCode
        self.httpStatus = httpStatus
        self.bytesSent = bytesSent
        self.error = error
        self.remoteAddress = remoteAddress
    }
}
