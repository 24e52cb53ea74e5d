import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import WharfCore
import WharfPKI
import X509

/// The revocations the handshake enforces: a client certificate that chains to a trusted
/// CA but was revoked (by fingerprint, or by the serial Wharf's CA gave it), or that its
/// partner's CA lists in its CRL, fails the handshake; so does every certificate of a
/// partner whose CA's CRL is past its next update or cannot be used. Checked once the
/// handshake is done (`RevocationCheckHandler`), on the leaf `ClientCertificateCheck` accepted.
struct RevokedCertificates: Sendable {
    let revocations: [Revocation]
    let partnerLists: PartnerRevocationLists
    private let byFingerprint: [CertificateFingerprint: Revocation]
    private let bySerial: [String: Revocation]

    init(revocations: [Revocation], wharfCA: CertificateFingerprint?, partnerLists: PartnerRevocationLists = PartnerRevocationLists()) {
        self.revocations = revocations
        self.partnerLists = partnerLists
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

    /// Why `leaf` is refused although it chains to a trusted CA, if it is.
    func refusal(of leaf: NIOSSLCertificate, anchors: TrustAnchors, now: Date = Date()) -> HandshakeRefusal? {
        if let revocation = revocation(of: leaf, anchors: anchors) {
            return HandshakeRefusal(code: "revoked", detail: revocation.description, partner: revocation.partner)
        }
        guard !partnerLists.lists.isEmpty, let der = try? leaf.toDERBytes(), let parsed = try? Certificate(derEncoded: der),
              case .partnerCA(let partner) = anchors.issuer(of: parsed), let list = partnerLists.lists[partner]
        else { return nil }
        return list.refusal(serial: Revocation.normalizedSerial(Hex.encode(leaf.serialNumber)), partner: partner, now: now)
    }
}

/// Why the handshake refused a certificate that chains to a trusted CA: for the audit
/// trail (`detail`) and the refusal counts (`code`).
struct HandshakeRefusal: Error, Sendable, CustomStringConvertible {
    /// `revoked`, `crl_expired` or `crl_unusable`.
    let code: String
    let detail: String
    let partner: String?
    var description: String { detail }
}

/// Which refusal ended a connection's handshake, if one did.
final class RevocationNote: Sendable {
    let refusal = NIOLockedValueBox<HandshakeRefusal?>(nil)
}

/// The CRLs of partners' own CAs as last read, by partner. `version` changes whenever one
/// is read again, so a connection's context is rebuilt only then.
struct PartnerRevocationLists: Sendable {
    enum State: Sendable {
        case read(PartnerRevocationList)
        case unusable(String)
    }

    struct Loaded: Sendable {
        let path: String
        let state: State

        func refusal(serial: String, partner: PartnerName, now: Date) -> HandshakeRefusal? {
            let whose = "the CRL of partner '\(partner)''s CA (\(EscapedText.terminal(path)))"
            switch state {
            case .unusable(let reason):
                return HandshakeRefusal(code: "crl_unusable", detail: "\(whose) cannot be used: \(reason)", partner: partner.rawValue)
            case .read(let list):
                if list.isStale(at: now), let nextUpdate = list.nextUpdate {
                    return HandshakeRefusal(
                        code: "crl_expired",
                        detail: "\(whose) is past its next update (\(nextUpdate.utcTimestamp())); the partner's certificates are refused until it is renewed",
                        partner: partner.rawValue
                    )
                }
                guard list.serials.contains(serial) else { return nil }
                return HandshakeRefusal(code: "revoked", detail: "the certificate is listed as revoked in \(whose)", partner: partner.rawValue)
            }
        }
    }

    var lists: [PartnerName: Loaded] = [:]
    var version = 0
}
