import COpenSSL
import WharfCore
import X509

/// PKCS#12 files as Java and OpenSSL read them, written by system OpenSSL.
///
/// Both use PBES2 with AES-256-CBC and an HMAC-SHA-256 MAC, 10,000 iterations each.
public enum PKCS12 {
    /// A keystore: `identity`'s key and certificate under `alias`, followed by `chain`.
    public static func keystore(
        _ identity: KeyedCertificate, chain: [Certificate], alias: String, password: String
    ) throws(WharfError) -> [UInt8] {
        let chainPEM = chain.map(\.pemText).joined()
        return try encode("keystore") { out in
            wharf_pkcs12_keystore(identity.certificate.pemText, identity.privateKeyPEM, chainPEM, password, alias, out)
        }
    }

    /// A truststore holding `certificates` as trusted entries (`alias`, `alias-2`, ...).
    public static func truststore(_ certificates: [Certificate], alias: String, password: String) throws(WharfError) -> [UInt8] {
        let pem = certificates.map(\.pemText).joined()
        return try encode("truststore") { out in
            wharf_pkcs12_truststore(pem, password, alias, out)
        }
    }

    private static func encode(
        _ what: String, _ body: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>) -> Int32
    ) throws(WharfError) -> [UInt8] {
        var buffer: UnsafeMutablePointer<UInt8>?
        let length = body(&buffer)
        defer { wharf_openssl_free(buffer) }
        guard length > 0, let buffer else {
            var message = [CChar](repeating: 0, count: 256)
            wharf_openssl_last_error(&message, message.count)
            let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw .cryptography("OpenSSL could not write the PKCS#12 \(what): \(text)")
        }
        return Array(UnsafeBufferPointer(start: buffer, count: Int(length)))
    }
}
