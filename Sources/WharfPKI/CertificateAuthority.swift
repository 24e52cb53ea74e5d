import Crypto
import _CryptoExtras
import Foundation
import SwiftASN1
import WharfCore
import X509

/// A certificate and the private key that goes with it.
public struct KeyedCertificate: Sendable {
    public let certificate: Certificate
    public let privateKey: Certificate.PrivateKey

    public init(certificate: Certificate, privateKey: Certificate.PrivateKey) {
        self.certificate = certificate
        self.privateKey = privateKey
    }

    /// The private key as PKCS#8 PEM, ending in a newline.
    public var privateKeyPEM: String {
        privateKey.pemText
    }
}

/// One of Wharf's own certificate authorities: the partner CA signs the client
/// certificates it issues to partners (and the CRL), the identity CA the server
/// certificate partners connect to and the client certificate Wharf presents (see
/// ``PKIDirectory/Layout``). A home made before the split has one CA that does both.
///
/// Certificates follow RFC 5280 as OpenSSL, Java and curl check it: the CA is critical
/// `BasicConstraints` CA with path length 0 and `keyCertSign`/`cRLSign`; leaves carry a
/// critical non-CA `BasicConstraints`, `digitalSignature`, one extended key usage, and
/// subject and authority key identifiers.
public struct CertificateAuthority: Sendable {
    public let keyed: KeyedCertificate
    public var certificate: Certificate { keyed.certificate }

    public init(_ keyed: KeyedCertificate) {
        self.keyed = keyed
    }

    /// A new self-signed CA valid for `days`, starting an hour ago to absorb clock skew.
    ///
    /// Its subject is `CN=<commonName>,O=<organization>`; the default common name carries
    /// a random id (``uniqueCommonName()``).
    public static func create(
        commonName: String = uniqueCommonName(), organization: String = "Wharf",
        keyType: KeyType, days: Int = 3650, now: Date = Date()
    ) throws(WharfError) -> CertificateAuthority {
        let key = try keyType.generate()
        let wrapped: () throws -> Certificate = {
            let name = try DistinguishedName {
                OrganizationName(organization)
                CommonName(commonName)
            }
            return try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: key.publicKey,
                notValidBefore: now.addingTimeInterval(-3600),
                notValidAfter: now.addingTimeInterval(Double(days) * 86_400),
                issuer: name,
                subject: name,
                signatureAlgorithm: key.preferredSignatureAlgorithm,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: key.publicKey)
                },
                issuerPrivateKey: key
            )
        }
        do {
            return CertificateAuthority(KeyedCertificate(certificate: try wrapped(), privateKey: key))
        } catch {
            throw .cryptography("cannot create the CA certificate: \(error)")
        }
    }

    /// `Wharf CA` (or `Wharf partner CA`, `Wharf identity CA` for a `purpose`) and a
    /// random 8-digit hex id, so that two installations of one organisation (or a partner
    /// of two Wharfs) can tell the CAs apart in a trust store.
    public static func uniqueCommonName(_ purpose: String? = nil) -> String {
        "Wharf \(purpose.map { "\($0) " } ?? "")CA " + Hex.encode((0..<4).map { _ in UInt8.random(in: .min ... .max) })
    }

    /// A server certificate for `hostNames` (DNS names or IP addresses) with a new key.
    public func issueServerCertificate(
        hostNames: [String], keyType: KeyType, days: Int = 365, now: Date = Date()
    ) throws(WharfError) -> KeyedCertificate {
        try issueServerCertificate(hostNames: hostNames, key: try keyType.generate(), days: days, now: now)
    }

    /// A server certificate for `hostNames` for an existing `key`: partners that pin the
    /// key keep working across the reissue.
    public func issueServerCertificate(
        hostNames: [String], key: Certificate.PrivateKey, days: Int = 365, now: Date = Date()
    ) throws(WharfError) -> KeyedCertificate {
        let alternativeNames = try hostNames.map { name throws(WharfError) in try GeneralName(hostName: name) }
        let commonName = hostNames.first ?? "localhost"
        let organization = self.organization
        let certificate = try issue(
            subject: { try DistinguishedName { OrganizationName(organization); CommonName(commonName) } },
            usage: .serverAuth, alternativeNames: alternativeNames, publicKey: key.publicKey, days: days, now: now
        )
        return KeyedCertificate(certificate: certificate, privateKey: key)
    }

    /// A client certificate whose subject is `CN=commonName,O=organization`, with a new key.
    public func issueClientCertificate(
        commonName: String, organization: String, keyType: KeyType, days: Int = 365, now: Date = Date(),
        revocationListURL: String? = nil
    ) throws(WharfError) -> KeyedCertificate {
        try issueClientCertificate(
            commonName: commonName, organization: organization, key: try keyType.generate(), days: days, now: now,
            revocationListURL: revocationListURL
        )
    }

    /// A client certificate whose subject is `CN=commonName,O=organization` for an existing `key`.
    public func issueClientCertificate(
        commonName: String, organization: String, key: Certificate.PrivateKey, days: Int = 365, now: Date = Date(),
        revocationListURL: String? = nil
    ) throws(WharfError) -> KeyedCertificate {
        let certificate = try issueClientCertificate(
            commonName: commonName, organization: organization, publicKey: key.publicKey, days: days, now: now,
            revocationListURL: revocationListURL
        )
        return KeyedCertificate(certificate: certificate, privateKey: key)
    }

    /// Wharf's own client certificate `current` again, with its subject, for `key` (the
    /// same key or the next one).
    public func reissueClientCertificate(
        _ current: Certificate, key: Certificate.PrivateKey, days: Int = 365, now: Date = Date()
    ) throws(WharfError) -> KeyedCertificate {
        try issueClientCertificate(
            commonName: current.subject.first(.RDNAttributeType.commonName) ?? "wharf",
            organization: current.subject.first(.RDNAttributeType.organizationName) ?? organization,
            key: key, days: days, now: now
        )
    }

    /// A client certificate for a public key whose private key Wharf never sees (a
    /// partner's certificate signing request).
    ///
    /// - Parameter revocationListURL: where Wharf's CRL is published (the admin listener's
    ///   `/crl`), put in the certificate as its CRL distribution point.
    public func issueClientCertificate(
        commonName: String, organization: String, publicKey: Certificate.PublicKey, days: Int = 365, now: Date = Date(),
        revocationListURL: String? = nil
    ) throws(WharfError) -> Certificate {
        try issue(
            subject: { try DistinguishedName { OrganizationName(organization); CommonName(commonName) } },
            usage: .clientAuth, alternativeNames: [], publicKey: publicKey, days: days, now: now,
            revocationListURL: revocationListURL
        )
    }

    /// The organisation in the CA's subject, which Wharf's own certificates carry too.
    public var organization: String {
        certificate.subject.first(.RDNAttributeType.organizationName) ?? "Wharf"
    }

    private func issue(
        subject: () throws -> DistinguishedName,
        usage: ExtendedKeyUsage.Usage,
        alternativeNames: [GeneralName],
        publicKey: Certificate.PublicKey,
        days: Int,
        now: Date,
        revocationListURL: String? = nil
    ) throws(WharfError) -> Certificate {
        guard days > 0 else { throw .invalid("a certificate must be valid for at least one day", fix: "give --days 1 or more") }
        let notAfter = now.addingTimeInterval(Double(days) * 86_400)
        guard notAfter <= certificate.notValidAfter else {
            throw .invalid(
                "a certificate valid for \(days) days would outlive the CA, which expires \(certificate.notValidAfter)",
                fix: "give fewer --days"
            )
        }
        let authority = keyed
        let isRSA = _RSA.Signing.PublicKey(publicKey) != nil
        do {
            return try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: publicKey,
                notValidBefore: now.addingTimeInterval(-3600),
                notValidAfter: notAfter,
                issuer: authority.certificate.subject,
                subject: try subject(),
                signatureAlgorithm: authority.privateKey.preferredSignatureAlgorithm,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true, keyEncipherment: isRSA))
                    try ExtendedKeyUsage([usage])
                    SubjectKeyIdentifier(hash: publicKey)
                    AuthorityKeyIdentifier(
                        keyIdentifier: try authority.certificate.extensions.subjectKeyIdentifier?.keyIdentifier
                    )
                    if !alternativeNames.isEmpty {
                        SubjectAlternativeNames(alternativeNames)
                    }
                    if let revocationListURL {
                        Self.distributionPoint(revocationListURL)
                    }
                },
                issuerPrivateKey: authority.privateKey
            )
        } catch {
            throw .cryptography("cannot issue the certificate: \(error)")
        }
    }
}

extension CertificateAuthority {
    /// A CRL distribution points extension (RFC 5280 §4.2.1.13) with one URI:
    /// SEQUENCE { SEQUENCE { [0] { [0] { [6] URI } } } }.
    static func distributionPoint(_ url: String) -> Certificate.Extension {
        var serializer = DER.Serializer()
        serializer.appendConstructedNode(identifier: .sequence) { points in
            points.appendConstructedNode(identifier: .sequence) { point in
                point.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { name in
                    name.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { fullName in
                        fullName.appendPrimitiveNode(identifier: ASN1Identifier(tagWithNumber: 6, tagClass: .contextSpecific)) {
                            $0.append(contentsOf: Array(url.utf8))
                        }
                    }
                }
            }
        }
        return Certificate.Extension(oid: [2, 5, 29, 31], critical: false, value: ArraySlice(serializer.serializedBytes))
    }

    /// Checks a CRL distribution point: an absolute http or https URL of printable ASCII.
    public static func checkRevocationListURL(_ text: String) throws(WharfError) -> String {
        guard let url = URL(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil,
              text.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7F })
        else {
            throw .invalid("'\(EscapedText.terminal(text))' is not an http or https URL", fix: "give --crl-url a URL such as http://gateway.example.com:9090/crl")
        }
        return text
    }
}

extension GeneralName {
    /// An `iPAddress` name for an IPv4 or IPv6 literal, else a `dNSName`.
    init(hostName: String) throws(WharfError) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, hostName, &v4) == 1 {
            self = .ipAddress(ASN1OctetString(contentBytes: withUnsafeBytes(of: &v4) { ArraySlice($0) }))
        } else if inet_pton(AF_INET6, hostName, &v6) == 1 {
            self = .ipAddress(ASN1OctetString(contentBytes: withUnsafeBytes(of: &v6) { ArraySlice($0) }))
        } else {
            let labels = hostName.split(separator: ".", omittingEmptySubsequences: false)
            let valid = !hostName.isEmpty && hostName.utf8.count <= 253 && labels.allSatisfy { label in
                !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                    && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "*") }
            }
            guard valid else {
                throw .invalid(
                    "'\(hostName)' is not a host name or IP address",
                    fix: "give --server-name a DNS name such as gateway.example.com, or an IP address"
                )
            }
            self = .dnsName(hostName.lowercased())
        }
    }
}
