import Foundation
import WharfCore
import X509

/// Reading the PEM files an operator points Wharf at, with errors that name the file.
public enum PEMFile {
    /// The text of `path`.
    public static func read(_ path: String) throws(WharfError) -> String {
        guard FileManager.default.fileExists(atPath: path) else {
            throw WharfError(.unreadableFile, "\(path) does not exist", fix: "check the path")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WharfError(.unreadableFile, "cannot read \(path)", fix: "check that it is a file Wharf's user may read")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw .invalid("\(path) is not a PEM file", fix: "convert DER with `openssl x509 -inform der -in FILE -out FILE.pem`")
        }
        return text
    }

    /// The certificates in `path`, normalised to PEM text.
    public static func certificates(_ path: String) throws(WharfError) -> (pem: String, certificates: [Certificate]) {
        let certificates = try Certificate.parseAll(pem: try read(path), source: path)
        return (certificates.map(\.pemText).joined(), certificates)
    }
}

extension KeyedCertificate {
    /// A certificate and key from PEM text, refused unless the key belongs to the certificate.
    public init(
        certificatePEM: String, privateKeyPEM: String, certificateSource: String, keySource: String
    ) throws(WharfError) {
        let certificate = try Certificate.parseAll(pem: certificatePEM, source: certificateSource)[0]
        let key = try Certificate.PrivateKey(pem: privateKeyPEM, source: keySource)
        guard key.publicKey == certificate.publicKey else {
            throw .invalid(
                "the key in \(keySource) does not belong to the certificate in \(certificateSource)",
                fix: "give the key that was generated with this certificate"
            )
        }
        self.init(certificate: certificate, privateKey: key)
    }
}

extension Certificate.PrivateKey {
    /// A private key from PEM text; `source` names the file in the message.
    public init(pem text: String, source: String) throws(WharfError) {
        do {
            self = try Certificate.PrivateKey(pemEncoded: text)
        } catch {
            throw .invalid(
                "\(source) is not a private key Wharf can use",
                fix: "give an unencrypted PEM key (PKCS#8, EC or RSA); decrypt one with `openssl pkey -in KEY -out KEY.plain`"
            )
        }
    }

    /// PKCS#8 PEM, ending in a newline.
    public var pemText: String {
        // Serialising a key Wharf holds succeeds; a failure is a bug.
        try! serializeAsPEM().pemString + "\n"
    }
}
