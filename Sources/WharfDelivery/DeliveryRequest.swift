import Foundation
import WharfCore

/// Everything one delivery needs, fixed before the attempt starts.
public struct DeliveryRequest: Sendable {
    /// `{partner url}/{percent-encoded filename}`.
    public var url: String
    public var filePath: String
    public var size: Int64
    public var sha256: String
    public var idempotencyKey: String
    /// What Wharf presents: the partner's own credential, else Wharf's client certificate.
    public var clientCertificatePEM: String
    public var clientKeyPEM: String
    /// The CAs that sign the partner's server; `nil` means the system's store.
    public var serverCAPEM: String?
    public var pins: [PublicKeyPin]
    public var connectTimeout: Int = 10
    /// An attempt slower than `lowSpeedLimit` bytes/s for `lowSpeedTime` seconds is abandoned.
    public var lowSpeedLimit: Int = 1024
    public var lowSpeedTime: Int = 60
    /// Files of at least this many bytes are sent resumable (`Upload-Complete: ?1`): a
    /// Wharf receiver then keeps what arrived of a broken attempt.
    public var resumableFrom: Int64 = 8 * 1024 * 1024
    /// Where the receiver holds what arrived of an earlier attempt, if it said so.
    public var uploadLocation: String?

    public init(
        url: String, filePath: String, size: Int64, sha256: String, idempotencyKey: String,
        clientCertificatePEM: String, clientKeyPEM: String, serverCAPEM: String?, pins: [PublicKeyPin]
    ) {
        self.url = url
        self.filePath = filePath
        self.size = size
        self.sha256 = sha256
        self.idempotencyKey = idempotencyKey
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
        self.serverCAPEM = serverCAPEM
        self.pins = pins
    }

    /// The URL a file named `filename` is PUT to under `base`.
    public static func url(base: OutboundURL, filename: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/;?#%")
        return base.rawValue + "/" + (filename.addingPercentEncoding(withAllowedCharacters: allowed) ?? filename)
    }
}
