import Foundation
import WharfCore
import X509

/// The `pki/` directory of a Wharf home.
///
/// | file | what |
/// |---|---|
/// | `ca.crt`, `ca.key` | Wharf's CA |
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
    public func create(authority: CertificateAuthority, server: KeyedCertificate, client: KeyedCertificate) throws(WharfError) {
        let staging = "\(path).tmp-\(getpid())"
        do {
            try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw WharfError(.fileSystem, "cannot create \(staging): \(error.localizedDescription)")
        }
        do throws(WharfError) {
            let stage = PKIDirectory(path: staging)
            try stage.write(authority.keyed, certificate: "ca.crt", key: "ca.key")
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

    /// Replaces the certificate and key of `role`.
    public func replace(_ role: Role, with keyed: KeyedCertificate) throws(WharfError) {
        try write(keyed, certificate: "\(role.rawValue).crt", key: "\(role.rawValue).key")
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

    public func loadAuthority() throws(WharfError) -> CertificateAuthority {
        CertificateAuthority(try load(certificate: "ca.crt", key: "ca.key"))
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
