import Foundation
import Testing
import WharfTestSupport

/// The connection caps: an address that holds its share of connections gets no more,
/// and other clients are served meanwhile.
@Suite struct ConnectionLimitTests {
    @Test func anAddressOverItsCapIsClosedAtOnceWhileOthersKeepUploading() async throws {
        let gateway = try await TestGateway.start { configuration in
            configuration.maxConnectionsPerAddress = 2
            // The held connections never start TLS: keep them past the steps below.
            configuration.handshakeTimeout = .seconds(120)
        }
        // Two plain TCP connections from 127.0.0.2, held open: the cap counts a connection
        // from its accept, before any TLS.
        let holder = try BackgroundProcess("python3", ["-u", "-c", """
            import socket, sys
            held = [socket.create_connection(("127.0.0.1", \(gateway.port)), source_address=("127.0.0.2", 0)) for _ in range(2)]
            print("held", flush=True)
            sys.stdin.read()
            """])
        _ = try await holder.waitForOutput { $0.contains("held") }
        let file = try gateway.randomFile("capped.txt", size: 100)
        @Sendable func upload(from address: String) async throws -> HTTPResult {
            try await gateway.curl(["--interface", address, "--upload-file", file.path, gateway.url("/inbox/capped.txt")])
        }

        let third = try await upload(from: "127.0.0.2")
        #expect(third.status == 0, "a third connection from 127.0.0.2 was served: \(third.body)")
        #expect(try await upload(from: "127.0.0.1").status == 201)

        // Once the address lets go, it is served again.
        holder.closeInput()
        _ = try await holder.waitForExit()
        try await Wait.within(.seconds(30), "127.0.0.2 served again") {
            while try await upload(from: "127.0.0.2").status != 201 {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        try await gateway.stop()
    }
}

@Suite struct MinimumBodyRateTests {
    /// A body that keeps trickling never trips the no-progress timeout; the minimum rate
    /// cuts it off and nothing of it is kept.
    @Test func aTricklingBodyIsCutOffAndLeavesNothing() async throws {
        let gateway = try await TestGateway.start { configuration in
            configuration.minimumBodyRate = 1_024
            configuration.bodyRateWindow = .seconds(1)
            configuration.bodyProgressTimeout = .seconds(60)
            configuration.writeBufferSize = 1
        }
        let before = try gateway.spoolState()
        let bundle = "\(gateway.home)/partners/acme"
        // 20 bytes every 100 ms: 200 bytes a second, under the 1 KiB asked for.
        let trickle = try BackgroundProcess("python3", ["-u", "-c", """
            import socket, ssl, time
            context = ssl.create_default_context(cafile="\(bundle)/ca.crt")
            context.load_cert_chain("\(bundle)/acme.crt", "\(bundle)/acme.key")
            s = context.wrap_socket(socket.create_connection(("127.0.0.1", \(gateway.port))), server_hostname="localhost")
            s.sendall(b"PUT /inbox/trickle.bin HTTP/1.1\\r\\nHost: localhost\\r\\nContent-Length: 100000\\r\\n\\r\\n")
            started = time.monotonic()
            try:
                while time.monotonic() - started < 60:
                    s.sendall(b"x" * 20)
                    time.sleep(0.1)
                print("never cut off", flush=True)
            except OSError:
                print("cut off after %.1f s" % (time.monotonic() - started), flush=True)
            """])
        let output = try await trickle.waitForOutput(timeout: .seconds(90)) { $0.contains("cut off") }
        #expect(!output.contains("never"), "\(output)")
        try await Wait.until("the spool as it was") { try gateway.spoolState() == before }
        try await gateway.stop()
    }
}
