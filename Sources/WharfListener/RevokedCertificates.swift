import Crypto
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import WharfCore
import X509

/// The revocations the handshake enforces: a client certificate that chains to a trusted
/// CA but was revoked (by fingerprint, or by the serial Wharf's CA gave it) fails the
/// handshake. Checked after BoringSSL's own verification succeeded, on the verified leaf.
struct RevokedCertificates: Sendable {
    let revocations: [Revocation]
    private let byFingerprint: [CertificateFingerprint: Revocation]
    private let bySerial: [String: Revocation]

    init(revocations: [Revocation], wharfCA: CertificateFingerprint?) {
        self.revocations = revocations
        var byFingerprint: [CertificateFingerprint: Revocation] = [:]
        var bySerial: [String: Revocation] = [:]
        for revocation in revocations {
            if let fingerprint = revocation.fingerprint { byFingerprint[fingerprint] = revocation }
            if let serial = revocation.serial { bySerial[serial] = revocation }
        }
        self.byFingerprint = byFingerprint
        self.bySerial = bySerial
    }

    /// The revocation naming `leaf`, if any.
    func revocation(of leaf: NIOSSLCertificate, anchors: TrustAnchors) -> Revocation? {
        guard !revocations.isEmpty, let der = try? leaf.toDERBytes() else { return nil }
        if let revocation = byFingerprint[CertificateFingerprint(digest: SHA256.hash(data: der))] { return revocation }
        let serial = Revocation.normalizedSerial(Hex.encode(leaf.serialNumber))
        guard let revocation = bySerial[serial], let parsed = try? Certificate(derEncoded: der),
              anchors.issuer(of: parsed) == .wharf else { return nil }
        return revocation
    }

    /// The server handler for one connection: NIOSSL's verification, then this check;
    /// a refusal is noted in `note` for the audit trail.
    func serverHandler(context: NIOSSLContext, anchors: TrustAnchors, note: RevocationNote) -> NIOSSLServerHandler {
        NIOSSLServerHandler._makeSSLServerHandler(context: context) { leaf, channel in
            guard let revocation = revocation(of: leaf, anchors: anchors) else {
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            note.revocation.withLockedValue { $0 = revocation }
            return channel.eventLoop.makeFailedFuture(RevokedCertificateError(revocation: revocation))
        }
    }
}

/// Which revocation refused a connection's handshake, if one did.
final class RevocationNote: Sendable {
    let revocation = NIOLockedValueBox<Revocation?>(nil)
}

struct RevokedCertificateError: Error, CustomStringConvertible {
    let revocation: Revocation
    var description: String { revocation.description }
}
