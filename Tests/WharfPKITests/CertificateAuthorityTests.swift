import Foundation
import Testing
import WharfCore
import WharfTestSupport
import X509
@testable import WharfPKI

/// Wharf's certificates, checked by the tools partners use: OpenSSL and Java's keytool.
@Suite struct CertificateAuthorityTests {
    let directory: TemporaryDirectory

    init() throws {
        directory = try TemporaryDirectory("wharf-pki")
    }

    func openssl(_ arguments: String...) throws -> CommandResult {
        try Command.run("openssl", arguments)
    }

    @Test(arguments: KeyType.allCases)
    func opensslAcceptsTheServerAndClientCertificatesForTheirPurpose(keyType: KeyType) throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", keyType: keyType)
        let server = try authority.issueServerCertificate(hostNames: ["gw.example.com", "localhost", "127.0.0.1", "::1"], keyType: keyType)
        let client = try authority.issueClientCertificate(commonName: "acme", organization: "Acme", keyType: keyType)
        let ca = try directory.write("ca.crt", authority.certificate.pemText)
        let serverFile = try directory.write("server.crt", server.certificate.pemText)
        let clientFile = try directory.write("client.crt", client.certificate.pemText)

        #expect(try openssl("verify", "-CAfile", ca, "-purpose", "sslserver", serverFile).succeeded)
        #expect(try openssl("verify", "-CAfile", ca, "-purpose", "sslclient", clientFile).succeeded)
        // Each is fit for its own purpose only.
        #expect(try !openssl("verify", "-CAfile", ca, "-purpose", "sslclient", serverFile).succeeded)
        #expect(try !openssl("verify", "-CAfile", ca, "-purpose", "sslserver", clientFile).succeeded)
        // And for the name a client connects to.
        #expect(try openssl("verify", "-CAfile", ca, "-verify_hostname", "gw.example.com", serverFile).succeeded)
        #expect(try openssl("verify", "-CAfile", ca, "-verify_ip", "::1", serverFile).succeeded)
        #expect(try !openssl("verify", "-CAfile", ca, "-verify_hostname", "other.example.com", serverFile).succeeded)
    }

    @Test func theCAIsACAWithPathLengthZero() throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", keyType: .p256)
        let text = try openssl("x509", "-noout", "-text", "-in", directory.write("ca.crt", authority.certificate.pemText)).stdout
        #expect(text.contains("CA:TRUE, pathlen:0"))
        #expect(text.contains("Certificate Sign, CRL Sign"))
    }

    @Test func aCertificateSignedByAnotherCAIsRejectedByOpenSSL() throws {
        let ours = try CertificateAuthority.create(commonName: "Ours", keyType: .p256)
        let foreign = try CertificateAuthority.create(commonName: "Ours", keyType: .p256)
        let client = try foreign.issueClientCertificate(commonName: "x", organization: "y", keyType: .p256)
        let result = try openssl(
            "verify", "-CAfile", directory.write("ca.crt", ours.certificate.pemText),
            directory.write("client.crt", client.certificate.pemText)
        )
        #expect(!result.succeeded)
    }

    @Test func fingerprintPinAndSubjectAgreeWithOpenSSL() throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", keyType: .p256)
        let client = try authority.issueClientCertificate(commonName: "acme", organization: "Acme, Inc.", keyType: .p256)
        let file = try directory.write("client.crt", client.certificate.pemText)

        let fingerprint = try openssl("x509", "-noout", "-fingerprint", "-sha256", "-in", file).stdout
        #expect(try CertificateFingerprint(parsing: fingerprint) == client.certificate.fingerprint)

        let pin = try Command.run("sh", ["-c", "openssl x509 -pubkey -noout -in '\(file)' | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64"])
        #expect(client.certificate.publicKeyPin.rawValue == "sha256//" + pin.stdout.trimmingCharacters(in: .whitespacesAndNewlines))

        let subject = try openssl("x509", "-noout", "-subject", "-in", file).stdout
            .replacingOccurrences(of: "subject=", with: "")
        #expect(try SubjectName(parsing: subject) == client.certificate.subjectName)
    }

    @Test func aCertificateCannotOutliveItsCA() throws {
        let authority = try CertificateAuthority.create(commonName: "Short", keyType: .p256, days: 10)
        #expect(throws: WharfError.self) {
            try authority.issueClientCertificate(commonName: "x", organization: "y", keyType: .p256, days: 11)
        }
        #expect(throws: WharfError.self) {
            try authority.issueClientCertificate(commonName: "x", organization: "y", keyType: .p256, days: 0)
        }
    }

    @Test(arguments: ["", "bad name", "-x.example", "a..b"])
    func aServerNameThatIsNoHostIsRefused(_ name: String) throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", keyType: .p256)
        #expect(throws: WharfError.self) { try authority.issueServerCertificate(hostNames: [name], keyType: .p256) }
    }

    @Test func aKeyThatDoesNotBelongToTheCertificateIsRefused() throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", keyType: .p256)
        let one = try authority.issueClientCertificate(commonName: "one", organization: "o", keyType: .p256)
        let two = try authority.issueClientCertificate(commonName: "two", organization: "o", keyType: .p256)
        #expect(throws: WharfError.self) {
            try KeyedCertificate(certificatePEM: one.certificate.pemText, privateKeyPEM: two.privateKeyPEM, certificateSource: "one.crt", keySource: "two.key")
        }
        let matched = try KeyedCertificate(certificatePEM: one.certificate.pemText, privateKeyPEM: one.privateKeyPEM, certificateSource: "one.crt", keySource: "one.key")
        #expect(matched.certificate == one.certificate)
    }

    @Test func textThatHoldsNoCertificateIsRefused() {
        #expect(throws: WharfError.self) { try Certificate.parseAll(pem: "hello", source: "x") }
        #expect(throws: WharfError.self) { try Certificate.parseAll(pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", source: "x") }
    }
}

/// Wharf's CRL numbers, as openssl reads them.
@Suite struct RevocationListNumberTests {
    @Test func twoListsMadeWithinOneSecondHaveIncreasingNumbers() throws {
        let authority = try CertificateAuthority.create(commonName: "Test CA", keyType: .p256)
        let directory = try TemporaryDirectory("wharf-crl")
        let second = Date(timeIntervalSince1970: 1_800_000_000)
        func number(at date: Date) throws -> Int {
            let list = try RevocationList(entries: [], authority: authority, now: date)
            let path = try directory.write("\(date.timeIntervalSince1970).pem", list.pemText)
            let printed = try Command.run("openssl", ["crl", "-in", path, "-noout", "-crlnumber"]).stdout
            // "crlNumber=0x…": hex.
            let hex = printed.split(separator: "=").last?.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "0x", with: "") ?? ""
            return try #require(Int(hex, radix: 16), "\(printed)")
        }
        let first = try number(at: second.addingTimeInterval(0.2))
        let later = try number(at: second.addingTimeInterval(0.7))
        #expect(later > first, "\(first), \(later)")
        #expect(try number(at: second.addingTimeInterval(1.0)) > later)
    }
}
