"""The published configs of the presets' models, written out from their hub repositories'
config.json files (from memory of those files: nothing here was downloaded), for
generation/random_weights.py to build the real architectures with random weights.

Each dict is what the named file holds, less the bookkeeping keys (`_diffusers_version`,
`_name_or_path`, `architectures`, `transformers_version`) that the libraries write back
themselves. Values marked UNSURE may differ from the published file; none of them changes the
parameter count or the FLOPs of a forward pass, only numerics.
"""

# --- Shared pieces --------------------------------------------------------------------------------

_SD_BLOCKS = {
    "block_out_channels": [320, 640, 1280, 1280],
    "down_block_types": [
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ],
    "up_block_types": [
        "UpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
    ],
}
_UNET_COMMON = {
    "act_fn": "silu",
    "center_input_sample": False,
    "downsample_padding": 1,
    "dual_cross_attention": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "num_class_embeds": None,
    "only_cross_attention": False,
    "sample_size": 64,  # latents of a 512x512 image
}
# The Stable Diffusion autoencoder (KL-f8), the same architecture in SD 1.5, 2.1 and SDXL.
_VAE = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "sample_size": 512,
    "scaling_factor": 0.18215,
}
# The scaled-linear schedule every Stable Diffusion model here was trained with.
_SCHEDULE = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "trained_betas": None,
    "clip_sample": False,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
}
# OpenAI's CLIP ViT-L/14 text tower (SD 1.5's text encoder, SDXL's first).
_CLIP_VIT_L_TEXT = {
    "model_type": "clip_text_model",
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-05,
    "projection_dim": 768,
    "attention_dropout": 0.0,
    "dropout": 0.0,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
    "bos_token_id": 0,
    "eos_token_id": 2,  # the legacy value: CLIPTextModel pools at the argmax id (<|endoftext|>)
    "pad_token_id": 1,
}

# --- sd-turbo: stabilityai/sd-turbo (the SD 2.1-base architecture) --------------------------------

SD_TURBO = {
    # stabilityai/sd-turbo model_index.json: no safety checker, no feature extractor.
    "pipeline": "StableDiffusionPipeline",
    # stabilityai/sd-turbo unet/config.json
    "unet": {
        **_UNET_COMMON,
        **_SD_BLOCKS,
        "attention_head_dim": [5, 10, 20, 20],
        "cross_attention_dim": 1024,
        "use_linear_projection": True,
        "upcast_attention": False,  # UNSURE: SD 2.1 (768-v) has true; 2.1-base and turbo false
    },
    # stabilityai/sd-turbo vae/config.json
    "vae": {**_VAE, "sample_size": 768},  # UNSURE: 768 (as 2.1) or 512; only a default size
    # stabilityai/sd-turbo text_encoder/config.json: OpenCLIP ViT-H/14's text tower as a
    # CLIPTextModel, its last of 24 layers dropped (SD 2.x reads the penultimate layer).
    "text_encoders": [
        (
            "CLIPTextModel",
            {
                **_CLIP_VIT_L_TEXT,
                "hidden_size": 1024,
                "intermediate_size": 4096,
                "num_hidden_layers": 23,
                "num_attention_heads": 16,
                "hidden_act": "gelu",
                "projection_dim": 512,
            },
        )
    ],
    # stabilityai/sd-turbo tokenizer/: OpenAI's CLIP BPE, padding with "!" (id 0) as OpenCLIP.
    "tokenizers": [{"pad_token": "!"}],
    # stabilityai/sd-turbo scheduler/scheduler_config.json
    "scheduler": (
        "EulerDiscreteScheduler",
        {
            **_SCHEDULE,
            "interpolation_type": "linear",
            "prediction_type": "epsilon",
            "timestep_spacing": "trailing",
            "timestep_type": "discrete",
            "use_karras_sigmas": False,
        },
    ),
}

# --- sd15: stable-diffusion-v1-5/stable-diffusion-v1-5 --------------------------------------------

SD15 = {
    "pipeline": "StableDiffusionPipeline",
    # unet/config.json
    "unet": {
        **_UNET_COMMON,
        **_SD_BLOCKS,
        "attention_head_dim": 8,
        "cross_attention_dim": 768,
    },
    "vae": _VAE,  # vae/config.json
    "text_encoders": [("CLIPTextModel", _CLIP_VIT_L_TEXT)],  # text_encoder/config.json
    "tokenizers": [{"pad_token": "<|endoftext|>"}],  # tokenizer/
    # scheduler/scheduler_config.json (the preset's default sampler replaces it per render)
    "scheduler": ("PNDMScheduler", dict(_SCHEDULE)),
    # safety_checker/config.json: CLIP ViT-L/14 (224 px) image tower and its projection;
    # random weights would flag images at random, so random_weights.py sets its thresholds
    # above any cosine similarity: the checker runs at full cost and flags nothing.
    "safety_checker": {
        "projection_dim": 768,
        "text_config": _CLIP_VIT_L_TEXT,
        "vision_config": {
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_hidden_layers": 24,
            "num_attention_heads": 16,
            "image_size": 224,
            "patch_size": 14,
            "hidden_act": "quick_gelu",
            "projection_dim": 768,
        },
    },
    # feature_extractor/preprocessor_config.json: CLIP's 224 px preprocessing.
    "feature_extractor": {
        "crop_size": {"height": 224, "width": 224},
        "size": {"shortest_edge": 224},
        "do_center_crop": True,
        "do_normalize": True,
        "do_resize": True,
        "do_convert_rgb": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "resample": 3,
    },
}

# --- sdxl-turbo: stabilityai/sdxl-turbo -----------------------------------------------------------

SDXL_TURBO = {
    "pipeline": "StableDiffusionXLPipeline",
    # unet/config.json: SDXL's UNet (2.6B parameters) with its text_time added conditioning.
    "unet": {
        **_UNET_COMMON,
        "addition_embed_type": "text_time",
        "addition_embed_type_num_heads": 64,
        "addition_time_embed_dim": 256,
        "attention_head_dim": [5, 10, 20],
        "block_out_channels": [320, 640, 1280],
        "cross_attention_dim": 2048,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        # 1280 pooled text + 6 size numbers x 256
        "projection_class_embeddings_input_dim": 2816,
        "transformer_layers_per_block": [1, 2, 10],
        "use_linear_projection": True,
        "upcast_attention": False,
        "sample_size": 64,  # UNSURE: SDXL base says 128; turbo was trained at 512
    },
    # vae/config.json: SDXL's autoencoder (same architecture, its own scale).
    "vae": {**_VAE, "scaling_factor": 0.13025, "force_upcast": True},
    "text_encoders": [
        ("CLIPTextModel", _CLIP_VIT_L_TEXT),  # text_encoder/config.json
        (
            # text_encoder_2/config.json: OpenCLIP ViT-bigG/14's text tower with its projection.
            "CLIPTextModelWithProjection",
            {
                **_CLIP_VIT_L_TEXT,
                "hidden_size": 1280,
                "intermediate_size": 5120,
                "num_hidden_layers": 32,
                "num_attention_heads": 20,
                "hidden_act": "gelu",
                "projection_dim": 1280,
            },
        ),
    ],
    "tokenizers": [{"pad_token": "<|endoftext|>"}, {"pad_token": "!"}],  # tokenizer/, _2/
    # scheduler/scheduler_config.json
    "scheduler": (
        "EulerAncestralDiscreteScheduler",
        {
            **_SCHEDULE,
            "interpolation_type": "linear",
            "prediction_type": "epsilon",
            "sample_max_value": 1.0,
            "timestep_spacing": "trailing",
            "use_karras_sigmas": False,
        },
    ),
    "pipeline_kwargs": {"force_zeros_for_empty_prompt": True},  # model_index.json
}

# --- janus-pro-1b: deepseek-community/Janus-Pro-1B config.json ------------------------------------

JANUS_PRO_1B = {
    # text_config: the DeepSeek-LLM 1.3B Llama (24 layers in the published file).
    "text_config": {
        "model_type": "llama",
        "vocab_size": 102400,
        "hidden_size": 2048,
        "intermediate_size": 5632,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "max_position_embeddings": 16384,
        "rms_norm_eps": 1e-06,
        "rope_theta": 10000.0,  # UNSURE
        "hidden_act": "silu",
    },
    # vision_config: SigLIP-L at 384 px (24 layers), for understanding; generation skips it.
    "vision_config": {
        "hidden_size": 1024,
        "mlp_ratio": 4.0,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "image_size": 384,
        "patch_size": 16,
        "num_image_tokens": 576,
        "projection_dim": 2048,
    },
    # vq_config: the VQ-16 tokenizer's decoder turns 24x24 codes into 384x384 pixels.
    "vq_config": {
        "embed_dim": 8,
        "num_embeddings": 16384,
        "latent_channels": 256,
        "base_channels": 128,
        "channel_multiplier": [1, 1, 2, 2, 4],
        "num_res_blocks": 2,
        "num_patches": 24,
        "projection_dim": 2048,
        "image_token_embed_dim": 2048,
    },
    "image_token_id": 100581,
}
