package tileattn.dit;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import org.junit.jupiter.api.Test;
import tileattn.layout.Shape3;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;
import tileattn.tensor.SafetensorsFile;

/**
 * The CPU model against the PyTorch peer (scripts/wan_peer.py dump): same weights and inputs, the peer's
 * output computed in float64 with exact attention. The committed dump is the tiny configuration with BF16
 * weights; {@code -Dtileattn.peerDump=DIR} checks another dump (e.g. one written on the GPU machine).
 */
class PeerAgreementTest {

    static Path dump() throws Exception {
        String given = System.getProperty("tileattn.peerDump");
        if (given != null && !given.isBlank()) {
            return Paths.get(given);
        }
        return Paths.get(PeerAgreementTest.class.getResource("/tileattn/dit/peer-tiny/inputs.safetensors").toURI())
                .getParent();
    }

    @Test
    void forwardMatchesThePeerWithEveryAttention() throws Exception {
        Path dir = dump();
        String configName;
        FloatTensor latent, timestep, context, expected;
        try (SafetensorsFile in = SafetensorsFile.open(dir.resolve("inputs.safetensors"));
             SafetensorsFile out = SafetensorsFile.open(dir.resolve("outputs.safetensors"))) {
            configName = in.metadata().get("config");
            latent = in.read("latent");
            timestep = in.read("timestep");
            context = in.read("context");
            expected = out.read("velocity");
        }
        WanConfig config = WanConfig.byName(configName);
        WanModel model = new WanModel(WanCheckpoint.load(dir, config));
        TextCondition text = model.condition(context);
        Shape3 grid = config.tokenGrid(new Shape3(latent.dim(2), latent.dim(3), latent.dim(4)));
        Shape3 tile = new Shape3(2, 2, 2);
        Shape3 tiles = new tileattn.layout.TileGrid(grid, tile).tiles();
        SelfAttention[] attentions = {
            new SelfAttention.Dense(),
            new SelfAttention.Dense(tile),
            SelfAttention.Sta.uniform(tile, Window.full(tiles), config.heads()),
            SelfAttention.Vsa.keepTopK(tile, tiles.volume()),
        };
        for (SelfAttention attention : attentions) {
            FloatTensor actual = model.forward(latent, timestep.data(), text, attention);
            double err = relativeL2(actual, expected);
            assertTrue(err < 1e-5, attention.describe() + ": relative L2 error " + err + " against the peer");
        }
    }

    static double relativeL2(FloatTensor actual, FloatTensor expected) {
        assertTrue(actual.sameShape(expected), actual.shapeString() + " vs " + expected.shapeString());
        double diff = 0, norm = 0;
        for (int i = 0; i < actual.size(); i++) {
            double d = (double) actual.data()[i] - expected.data()[i];
            diff += d * d;
            norm += (double) expected.data()[i] * expected.data()[i];
        }
        return Math.sqrt(diff / norm);
    }
}
