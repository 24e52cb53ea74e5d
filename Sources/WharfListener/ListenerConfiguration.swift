import NIOCore
import WharfCore

/// How the inbound listener runs. Every value has a default fit for production.
public struct ListenerConfiguration: Sendable {
    /// Where to listen; port 0 picks a free port.
    public var host: String = "0.0.0.0"
    public var port: Int = 8443
    /// A client that has not finished the TLS handshake by then is disconnected.
    public var handshakeTimeout: TimeAmount = .seconds(10)
    /// A connection that sends no complete request head for this long is closed
    /// (this also closes idle keep-alive connections).
    public var requestHeadTimeout: TimeAmount = .seconds(30)
    /// An upload whose body makes no progress for this long is abandoned.
    public var bodyProgressTimeout: TimeAmount = .seconds(60)
    /// How many receipts `GET /inbox` returns.
    public var receiptListLimit: Int = 100
    /// Body bytes gathered before one write to the staged file.
    public var writeBufferSize: Int = 256 * 1024
    /// Uploads declaring at least this many bytes are written past the page cache
    /// (`O_DIRECT`, see `StagedFile`).
    public var directWriteThreshold: Int64 = 8 * 1024 * 1024
    /// A resumable upload untouched for this long is removed, its bytes with it.
    public var partialUploadMaxAge: Duration = .seconds(86_400)
    /// Threads for the calls that block: file writes, fsyncs, registry reads and commits.
    public var blockingThreads: Int = 16

    /// Name the accepted CAs in the TLS CertificateRequest. Off by default: the list would
    /// tell anyone who connects which partners' CAs are trusted. Clients that pick a
    /// certificate by issuer (some Java set-ups with several keys) need it.
    public var sendCANames = false

    /// Bytes per second an upload's body must average over each `bodyRateWindow`, or the
    /// connection is closed (0: no minimum).
    public var minimumBodyRate = 1_024
    public var bodyRateWindow: TimeAmount = .seconds(60)

    /// Connections one client address may hold open at once.
    public var maxConnectionsPerAddress = 64
    /// Connections open at once, all clients together.
    public var maxConnections = 4_096

    /// The per-address defender: offences score points, and an address over the policy's
    /// threshold is banned (its connections closed at accept). Addresses in
    /// `defenderAllow` are never scored.
    public var defender = true
    public var defenderAllow: [AddressRange] = []
    public var defenderPolicy = DefenderPolicy()
    /// How soon an unban (or another node's ban) takes effect.
    public var defenderRefreshInterval: Duration = .seconds(2)

    /// How often refusals made before a partner is known are written, counted, to the
    /// audit trail (also when the listener stops).
    public var refusalFlushInterval: Duration = .seconds(60)

    public init() {}
}
