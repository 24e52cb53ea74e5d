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
