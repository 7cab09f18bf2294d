package org.rdzv.launcher;

/**
 * torchrun's {@code --nproc-per-node} ({@code determine_local_world_size}): a number, {@code cpu}
 * (one worker per CPU), {@code gpu} (one per GPU; an error without one) or {@code auto} (one per
 * GPU when the node has any, else one per CPU, so a GPU node with 96 cores starts one worker per
 * GPU).
 */
public final class LocalWorldSize {
  private static final String GPU = "On a node with GPUs, gpu too.";

  private LocalWorldSize() {}

  /**
   * The number of local workers {@code value} asks for on a node with {@code devices}.
   *
   * @throws IllegalArgumentException naming the flag, for a value that is none of these, a number
   *     below 1, or {@code gpu} without a GPU
   */
  public static int determine(String value, Devices devices) {
    String text = value == null ? "1" : value.strip();
    int n;
    switch (text) {
      case "cpu" -> n = devices.cpus();
      case "gpu" -> {
        if (devices.gpus() == 0) {
          throw new IllegalArgumentException(
              "--nproc-per-node gpu: Cuda is not available (no NVIDIA GPU visible here; "
                  + "CUDA_VISIBLE_DEVICES counts).");
        }
        n = devices.gpus();
      }
      case "auto" -> n = devices.gpus() > 0 ? devices.gpus() : devices.cpus();
      default -> {
        try {
          n = Integer.parseInt(text);
        } catch (NumberFormatException e) {
          throw new IllegalArgumentException(
              "--nproc-per-node '" + text + "' must be a positive number, auto or cpu. " + GPU, e);
        }
      }
    }
    if (n < 1) {
      throw new IllegalArgumentException(
          "--nproc-per-node '" + text + "' must be a positive number, auto or cpu. " + GPU);
    }
    return n;
  }
}
