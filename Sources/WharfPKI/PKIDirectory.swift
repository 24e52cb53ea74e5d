import Foundation
import WharfCore
import X509

/// The `pki/` directory of a Wharf home.
///
/// | file | what |
/// |---|---|
/// | `ca.crt`, `ca.key` | the partner CA: signs partners' client certificates, and the listener trusts it; in a home made before the CAs were split (``Layout/oneCA``) it signs Wharf's own certificates too |
/// | `identity-ca.crt`, `identity-ca.key` | the identity CA: signs Wharf's server and client certificates, and is what partners trust |
/// | `server.crt`, `server.key` | the certificate the listener presents |
/// | `client.crt`, `client.key` | the certificate Wharf presents to partners without one of their own |
/// | `crl.pem` | Wharf's CRL (`wharf ca crl`), written again on every revocation |
/// | `server.next.key`, `client.next.key` | a staged key (`wharf ca rotate-key --stage`), not yet in use |
///
/// Keys are mode 0600; every file is written atomically.
public struct PKIDirectory: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public var caCertificatePath: String { "\(path)/ca.crt" }
    public var identityCertificatePath: String { "\(path)/identity-ca.crt" }
    public var identityKeyPath: String { "\(path)/identity-ca.key" }
    public var serverCertificatePath: String { "\(path)/server.crt" }
    public var serverKeyPath: String { "\(path)/server.key" }
    public var clientCertificatePath: String { "\(path)/client.crt" }
    public var clientKeyPath: String { "\(path)/client.key" }
    public var revocationListPath: String { "\(path)/crl.pem" }

    /// Wharf's own two certificates, each with a key that can be rotated.
    public enum Role: String, Sendable, CaseIterable {
        case server
        case client
    }

    public func certificatePath(_ role: Role) -> String { "\(path)/\(role.rawValue).crt" }
    public func keyPath(_ role: Role) -> String { "\(path)/\(role.rawValue).key" }
    public func stagedKeyPath(_ role: Role) -> String { "\(path)/\(role.rawValue).next.key" }

    public var exists: Bool { FileManager.default.fileExists(atPath: path) }

    /// Writes a new PKI. The directory appears whole: it is built under a temporary name
    /// and renamed into place.
    ///
    /// - Parameters:
    ///   - authority: the partner CA (`ca.crt`).
    ///   - identity: the identity CA that signed `server` and `client`; nil for a home with
    ///     one CA that signed everything.
    public func create(
        authority: CertificateAuthority, identity: CertificateAuthority?, server: KeyedCertificate, client: KeyedCertificate
    ) throws(WharfError) {
        let staging = "\(path).tmp-\(getpid())"
        do {
            try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw WharfError(.fileSystem, "cannot create \(staging): \(error.localizedDescription)")
        }
        do throws(WharfError) {
            let stage = PKIDirectory(path: staging)
            try stage.write(authority.keyed, certificate: "ca.crt", key: "ca.key")
            if let identity {
                try stage.write(identity.keyed, certificate: "identity-ca.crt", key: "identity-ca.key")
            }
            try stage.write(server, certificate: "server.crt", key: "server.key")
            try stage.write(client, certificate: "client.crt", key: "client.key")
            guard rename(staging, path) == 0 else {
                throw WharfError(.fileSystem, "cannot move \(staging) to \(path): \(String(cString: strerror(errno)))")
            }
            try AtomicFile.syncDirectory((path as NSString).deletingLastPathComponent)
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
    }

    /// Replaces the server certificate and key.
    public func replaceServer(_ server: KeyedCertificate) throws(WharfError) {
        try replace(.server, with: server)
    }

    /// Replaces the certificate and key of `role`. An earlier server certificate is kept
    /// in `server-history/`, so receipts it signed can still be verified.
    public func replace(_ role: Role, with keyed: KeyedCertificate) throws(WharfError) {
        if role == .server, let current = try? PEMFile.certificates(serverCertificatePath).certificates.first {
            try? FileManager.default.createDirectory(atPath: serverHistoryPath, withIntermediateDirectories: true)
            try AtomicFile.write(current.pemText, to: "\(serverHistoryPath)/\(current.fingerprint.hex).crt", mode: 0o644)
        }
        try write(keyed, certificate: "\(role.rawValue).crt", key: "\(role.rawValue).key")
    }

    /// Where earlier server certificates are kept, each by its fingerprint.
    public var serverHistoryPath: String { "\(path)/server-history" }

    /// Every server certificate this home has used: the current one, then the earlier ones.
    public func serverCertificates() throws(WharfError) -> [Certificate] {
        var certificates = try PEMFile.certificates(serverCertificatePath).certificates
        let earlier = (try? FileManager.default.contentsOfDirectory(atPath: serverHistoryPath)) ?? []
        for name in earlier.sorted() where name.hasSuffix(".crt") {
            certificates += (try? PEMFile.certificates("\(serverHistoryPath)/\(name)").certificates) ?? []
        }
        return certificates
    }

    public func load(_ role: Role) throws(WharfError) -> KeyedCertificate {
        try load(certificate: "\(role.rawValue).crt", key: "\(role.rawValue).key")
    }

    /// The key staged for `role`, if there is one.
    public func stagedKey(_ role: Role) throws(WharfError) -> Certificate.PrivateKey? {
        let keyPath = stagedKeyPath(role)
        guard FileManager.default.fileExists(atPath: keyPath) else { return nil }
        return try Certificate.PrivateKey(pem: try PEMFile.read(keyPath), source: keyPath)
    }

    /// Writes `key` as the staged key of `role` (mode 0600).
    public func stage(_ key: Certificate.PrivateKey, for role: Role) throws(WharfError) {
        try AtomicFile.write(key.pemText, to: stagedKeyPath(role), mode: 0o600)
    }

    /// Removes the staged key of `role`; nothing happens when there is none.
    public func discardStagedKey(_ role: Role) throws(WharfError) {
        guard unlink(stagedKeyPath(role)) == 0 || errno == ENOENT else {
            throw WharfError(.fileSystem, "cannot remove \(stagedKeyPath(role)): \(String(cString: strerror(errno)))")
        }
        try AtomicFile.syncDirectory(path)
    }

    /// The partner CA: it signs partners' client certificates and Wharf's CRL.
    public func loadAuthority() throws(WharfError) -> CertificateAuthority {
        CertificateAuthority(try load(certificate: "ca.crt", key: "ca.key"))
    }

    /// The identity CA, or nil in a home with one CA.
    public func loadIdentityAuthority() throws(WharfError) -> CertificateAuthority? {
        guard FileManager.default.fileExists(atPath: identityCertificatePath) else { return nil }
        return CertificateAuthority(try load(certificate: "identity-ca.crt", key: "identity-ca.key"))
    }

    /// Writes the identity CA of a home that had one CA (`wharf ca split`); refuses when
    /// there is one already.
    public func addIdentityAuthority(_ identity: CertificateAuthority) throws(WharfError) {
        guard !FileManager.default.fileExists(atPath: identityCertificatePath) else {
            throw WharfError(.conflict, "\(identityCertificatePath) exists already", fix: "`wharf ca status` says what the home uses")
        }
        try write(identity.keyed, certificate: "identity-ca.crt", key: "identity-ca.key")
    }

    /// Which CA signs what.
    public enum Layout: Sendable, Equatable {
        /// One CA (`ca.crt`) signs partners' certificates and Wharf's own: a partner that
        /// trusts it to authenticate Wharf also accepts every other partner's certificate.
        case oneCA
        /// `wharf ca split` made an identity CA, but Wharf's own certificates are still
        /// signed by the old CA until the operator retires it from that role; partners
        /// are given both CAs to trust meanwhile.
        case overlap
        /// The partner CA signs partners' certificates, the identity CA Wharf's own.
        case separate
    }

    /// The layout, read from which CA issued the server certificate.
    public func layout() throws(WharfError) -> Layout {
        guard let identity = try loadIdentityAuthority() else { return .oneCA }
        return try loadServer().certificate.issuer == identity.certificate.subject ? .separate : .overlap
    }

    /// The CA that signs Wharf's server and client certificates now.
    public func ownCertificatesAuthority() throws(WharfError) -> CertificateAuthority {
        if try layout() == .separate, let identity = try loadIdentityAuthority() { return identity }
        return try loadAuthority()
    }

    /// What partners must trust to authenticate Wharf (its server certificate, and its
    /// client certificate when it delivers): the identity CA, or the one CA, or both
    /// while they overlap.
    public func partnerTrust() throws(WharfError) -> [Certificate] {
        switch try layout() {
        case .oneCA: [try loadAuthority().certificate]
        case .overlap: [try loadIdentityAuthority(), try loadAuthority()].compactMap { $0?.certificate }
        case .separate: [try loadIdentityAuthority()].compactMap { $0?.certificate }
        }
    }

    public func loadServer() throws(WharfError) -> KeyedCertificate {
        try load(certificate: "server.crt", key: "server.key")
    }

    public func loadClient() throws(WharfError) -> KeyedCertificate {
        try load(certificate: "client.crt", key: "client.key")
    }

    private func write(_ keyed: KeyedCertificate, certificate: String, key: String) throws(WharfError) {
        // The key first: a certificate never sits beside a key it does not belong to for longer
        // than the moment between the two renames.
        try AtomicFile.write(keyed.privateKeyPEM, to: "\(path)/\(key)", mode: 0o600)
        try AtomicFile.write(keyed.certificate.pemText, to: "\(path)/\(certificate)", mode: 0o644)
    }

    private func load(certificate: String, key: String) throws(WharfError) -> KeyedCertificate {
        let certificatePath = "\(path)/\(certificate)"
        let keyPath = "\(path)/\(key)"
        guard FileManager.default.fileExists(atPath: certificatePath) else {
            throw WharfError(
                .notInitialized, "no \(certificate) in \(path)",
                fix: "run `wharf init` first, or point --home (or WHARF_HOME) at an initialised home"
            )
        }
        let certificatePEM = try PEMFile.read(certificatePath)
        let keyPEM = try PEMFile.read(keyPath)
        return try KeyedCertificate(
            certificatePEM: certificatePEM, privateKeyPEM: keyPEM,
            certificateSource: certificatePath, keySource: keyPath
        )
    }
}
