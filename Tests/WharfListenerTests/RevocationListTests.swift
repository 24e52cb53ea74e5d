import Foundation
import Testing
import WharfPKI
import WharfTestSupport

/// Wharf's CRL, checked by openssl as a TLS terminator in front of Wharf would check it:
/// signed by the CA, listing what was revoked by serial and what was revoked by the
/// fingerprint of a certificate Wharf issued, and nothing else.
@Suite(.serialized) struct RevocationListTests {
    func openssl(_ arguments: String...) async throws -> CommandResult {
        try await Command.runAsync("openssl", arguments)
    }

    func serial(_ certificate: String) async throws -> String {
        let printed = try await openssl("x509", "-noout", "-serial", "-in", certificate).stdout
        return try #require(printed.split(separator: "=").last).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(arguments: ["p256", "rsa2048"])
    func theCRLListsRevokedCertificatesAndOpenSSLRefusesThem(keyType: String) async throws {
        let fixture = try WharfHomeFixture()
        try await fixture.succeed("init", "--key-type", keyType)
        for partner in ["acme", "beta", "gamma"] {
            try await fixture.succeed("partner", "add", partner)
            try await fixture.succeed("partner", "issue", partner)
        }
        let (pki, partners) = ("\(fixture.home)/pki", "\(fixture.home)/partners")
        let certificate = { (partner: String) in "\(partners)/\(partner)/\(partner).crt" }

        // Before any revocation: a valid, empty list, printed as PEM.
        let empty = try await fixture.succeed("ca", "crl").stdout
        #expect(empty.hasPrefix("-----BEGIN X509 CRL-----"), "\(empty)")
        let emptyText = try await openssl("crl", "-in", "\(pki)/crl.pem", "-CAfile", "\(pki)/ca.crt", "-noout", "-text")
        #expect(emptyText.stderr.contains("verify OK") && emptyText.stdout.contains("No Revoked Certificates"), "\(emptyText.stdout)\(emptyText.stderr)")

        let revoked = try await fixture.succeed("partner", "revoke", "acme").stdout
        #expect(revoked.contains("now lists 1 certificate"), "\(revoked)")
        try await fixture.succeed("ca", "revoke", "--serial", try await serial(certificate("beta")))

        let out = fixture.directory.file("wharf.crl")
        let written = try await fixture.succeed("ca", "crl", "--out", out).stdout
        #expect(written.contains("2 revoked"), "\(written)")
        for list in ["\(pki)/crl.pem", out] {
            let text = try await openssl("crl", "-in", list, "-CAfile", "\(pki)/ca.crt", "-noout", "-text")
            #expect(text.stderr.contains("verify OK"), "\(text.stderr)")
            #expect(text.stdout.contains("Next Update") && text.stdout.contains("CRL Number"), "\(text.stdout)")
            let checked = try await openssl(
                "verify", "-crl_check", "-CRLfile", list, "-CAfile", "\(pki)/ca.crt", certificate("acme"), certificate("beta"), certificate("gamma")
            )
            let output = checked.stdout + checked.stderr
            #expect(output.contains("\(certificate("gamma")): OK"), "\(output)")
            #expect(output.components(separatedBy: "certificate revoked").count == 3, "acme and beta are revoked: \(output)")
        }
    }

    @Test func theAdminListenerServesTheCurrentCRLWithoutARestart() async throws {
        let gateway = try await TestGateway.start(admin: 0)
        let port = try #require(gateway.adminPort)
        let pki = "\(gateway.home)/pki"
        let fetched = gateway.fixture.directory.file("served.crl")
        func fetch() async throws -> CommandResult {
            let download = try await Command.runAsync("curl", ["-sS", "-o", fetched, "-w", "%{http_code} %{content_type}", "http://127.0.0.1:\(port)/crl"])
            #expect(download.stdout == "200 application/pkix-crl", "\(download.stdout)\(download.stderr)")
            return try await openssl("crl", "-inform", "DER", "-in", fetched, "-CAfile", "\(pki)/ca.crt", "-noout", "-text")
        }
        let before = try await fetch()
        #expect(before.stderr.contains("verify OK") && before.stdout.contains("No Revoked Certificates"), "\(before.stdout)\(before.stderr)")

        try await gateway.fixture.succeed("partner", "revoke", "acme")
        let acme = try await serial("\(gateway.home)/partners/acme/acme.crt")
        let after = try await fetch()
        #expect(after.stderr.contains("verify OK") && after.stdout.contains("Serial Number: \(acme)"), "\(after.stdout)\(after.stderr)")
        try await gateway.stop()
    }

    @Test func aCertificateIssuedWithCrlURLIsCheckedByOpenSSLAgainstTheServedList() async throws {
        let gateway = try await TestGateway.start(admin: 0)
        let port = try #require(gateway.adminPort)
        let fixture = gateway.fixture
        let url = "http://127.0.0.1:\(port)/crl"
        try await fixture.succeed("partner", "add", "delta")
        try await fixture.succeed("partner", "issue", "delta", "--crl-url", url)
        let certificate = "\(fixture.home)/partners/delta/delta.crt"
        let text = try await openssl("x509", "-noout", "-ext", "crlDistributionPoints", "-in", certificate).stdout
        #expect(text.contains("URI:\(url)"), "\(text)")

        // openssl fetches the list from the certificate's distribution point itself.
        let ca = "\(fixture.home)/pki/ca.crt"
        let good = try await openssl("verify", "-crl_download", "-crl_check", "-CAfile", ca, certificate)
        #expect(good.succeeded && good.stdout.contains("OK"), "\(good.stdout)\(good.stderr)")
        try await fixture.succeed("partner", "revoke", "delta")
        let refused = try await openssl("verify", "-crl_download", "-crl_check", "-CAfile", ca, certificate)
        #expect(!refused.succeeded && (refused.stdout + refused.stderr).contains("certificate revoked"), "\(refused.stdout)\(refused.stderr)")
        try await gateway.stop()

        let bad = try await fixture.wharf("partner", "issue", "delta", "--crl-url", "ftp://example.com/crl")
        #expect(bad.status != 0 && bad.stderr.contains("not an http or https URL"), "\(bad.stderr)")
    }
}
