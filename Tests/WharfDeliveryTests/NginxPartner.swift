import Foundation
import Testing
import WharfPKI
import WharfTestSupport

/// A partner endpoint as partners run them: nginx with `ssl_verify_client on` and a DAV
/// `PUT` location, on a free loopback port, with a server certificate from the partner's
/// own CA. `/fail400/` answers 400 and `/busy/` 503 with `Retry-After: 1`.
final class NginxPartner: Sendable {
    let directory: TemporaryDirectory
    let port: Int
    let serverCA: CertificateAuthority
    private let process: BackgroundProcess

    var serverCAFile: String { directory.file("partner-ca.crt") }
    var received: String { directory.file("www/inbox") }
    func url(_ location: String = "inbox") -> String { "https://localhost:\(port)/\(location)" }

    /// - Parameter clientCA: the CA file whose client certificates nginx accepts.
    init(clientCA: String, port: Int? = nil) async throws {
        directory = try TemporaryDirectory("wharf-nginx")
        self.port = try port ?? FreePort.pick()
        serverCA = try CertificateAuthority.create(commonName: "Partner Root", keyType: .p256)
        let server = try serverCA.issueServerCertificate(hostNames: ["localhost", "127.0.0.1"], keyType: .p256)
        try directory.write("partner-ca.crt", serverCA.certificate.pemText)
        try directory.write("server.crt", server.certificate.pemText)
        try directory.write("server.key", server.privateKeyPEM)
        // nginx's workers run as another user when the master runs as root.
        try FileManager.default.createDirectory(
            atPath: directory.file("www/inbox"), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777]
        )
        let d = directory.path
        try directory.write("nginx.conf", """
            worker_processes 1;
            daemon off;
            pid \(d)/nginx.pid;
            error_log \(d)/error.log;
            events { worker_connections 256; }
            http {
                access_log \(d)/access.log;
                client_body_temp_path \(d)/body;
                proxy_temp_path \(d)/proxy;
                fastcgi_temp_path \(d)/fastcgi;
                uwsgi_temp_path \(d)/uwsgi;
                scgi_temp_path \(d)/scgi;
                server {
                    listen 127.0.0.1:\(self.port) ssl;
                    ssl_certificate \(d)/server.crt;
                    ssl_certificate_key \(d)/server.key;
                    ssl_client_certificate \(clientCA);
                    ssl_verify_client on;
                    client_max_body_size 0;
                    location /inbox/ { root \(d)/www; dav_methods PUT; create_full_put_path on; }
                    location /fail400/ { return 400; }
                    location /busy/ { add_header Retry-After 1 always; return 503; }
                }
            }
            """)
        process = try BackgroundProcess("nginx", ["-p", d, "-c", "\(d)/nginx.conf", "-e", "\(d)/error.log"])
        let port = self.port
        try await Wait.until("nginx to listen on \(port)") {
            (try? Command.run("bash", ["-c", "exec 3<>/dev/tcp/127.0.0.1/\(port)"]))?.succeeded == true
        }
    }

    /// The curl-style pin of nginx's server key.
    var pin: String {
        get throws {
            let server = try Command.run("sh", ["-c",
                "openssl x509 -pubkey -noout -in '\(directory.file("server.crt"))' | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64"])
            return "sha256//" + server.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    func stop() async throws {
        process.signal(SIGQUIT)
        _ = try await process.waitForExit()
    }

    deinit {
        process.signal(SIGKILL)
    }
}

/// A loopback port nobody listens on right now.
enum FreePort {
    static func pick() throws -> Int {
        let result = try Command.run("python3", ["-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"])
        return try #require(Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
    }
}
