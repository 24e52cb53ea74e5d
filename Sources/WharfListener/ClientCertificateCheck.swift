import Crypto
import Foundation
import NIOCore
import NIOSSL
import SwiftASN1
import WharfCore
import X509

/// Decides at the handshake which client certificates go on to the partner registry, in
/// place of BoringSSL's verification:
/// - exactly a certificate an active partner registered by its fingerprint, valid now,
///   whoever issued it (a self-signed one, as OpenAS2 and `keytool` partners use);
/// - else one issued directly by a trust anchor (`TrustAnchors`), valid now with its
///   anchor, for client authentication (RFC 5280, and the key usages BoringSSL's
///   `ssl_client` purpose asks for).
///
/// Which partner a certificate maps to is decided per request (`InboundAuthorization`),
/// and revocations after the handshake (`RevocationCheckHandler`): resumed sessions skip
/// this check.
struct ClientCertificateCheck: Sendable {
    let anchors: TrustAnchors
    private let roots: CertificateStore

    init(anchors: TrustAnchors) {
        self.anchors = anchors
        self.roots = CertificateStore(anchors.all)
    }

    /// NIOSSL's custom verification callback: `chain` is what the client sent, leaf first.
    func verify(_ chain: [NIOSSLCertificate], promise: EventLoopPromise<NIOSSLVerificationResult>) {
        let now = Date()
        guard let der = try? chain.first?.toDERBytes(), let leaf = try? Certificate(derEncoded: der) else {
            promise.succeed(.failed)
            return
        }
        if anchors.pinned.contains(CertificateFingerprint(digest: SHA256.hash(data: der))) {
            promise.succeed(leaf.notValidBefore <= now && now <= leaf.notValidAfter ? .certificateVerified : .failed)
            return
        }
        // A certificate verified before is verified again by its chain's validity alone.
        if let window = anchors.verified.value(for: der) {
            promise.succeed(window.contains(now) ? .certificateVerified : .failed)
            return
        }
        let roots = roots
        let verified = anchors.verified
        promise.completeWithTask {
            var verifier = Verifier(rootCertificates: roots) {
                RFC5280Policy()
                ClientAuthenticationPolicy()
            }
            // No intermediates: a client certificate must be issued by an anchor itself.
            guard case .validCertificate(let validated) = await verifier.validate(leaf: leaf, intermediates: CertificateStore())
            else { return .failed }
            let window = validated.map(\.notValidBefore).max()!...validated.map(\.notValidAfter).min()!
            verified.remember(window, for: der)
            return .certificateVerified
        }
    }
}

/// The key usages of a TLS client certificate and its issuer, as BoringSSL's `ssl_client`
/// purpose checks them: an extended key usage, if there is one, includes client
/// authentication; a key usage, if there is one, allows signing (or key agreement); an
/// issuer's key usage, if it has one, allows signing certificates.
struct ClientAuthenticationPolicy: VerifierPolicy {
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [
        .X509ExtensionID.extendedKeyUsage, .X509ExtensionID.keyUsage,
    ]

    mutating func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        do {
            if let usage = try chain.leaf.extensions.extendedKeyUsage, !usage.contains(.clientAuth), !usage.contains(.any) {
                return .failsToMeetPolicy(reason: "the certificate's extended key usage excludes client authentication")
            }
            if let usage = try chain.leaf.extensions.keyUsage, !usage.digitalSignature, !usage.keyAgreement {
                return .failsToMeetPolicy(reason: "the certificate's key usage allows neither signing nor key agreement")
            }
            for issuer in chain.dropFirst() {
                if let usage = try issuer.extensions.keyUsage, !usage.keyCertSign {
                    return .failsToMeetPolicy(reason: "the issuer's key usage does not allow signing certificates")
                }
            }
        } catch {
            return .failsToMeetPolicy(reason: "an extension cannot be read: \(error)")
        }
        return .meetsPolicy
    }
}
