from django.contrib import admin

from generation.scoring import get_scorer
from streams.models import Ban, Stream


@admin.register(Stream)
class StreamAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "topic", "model", "cadence", "active")
    list_filter = ("active",)
    prepopulated_fields = {"slug": ("title",)}
    # The backing party is made with the stream.
    readonly_fields = ("topic_guard", "party", "created_at")

    @admin.display(description="Topic guard")
    def topic_guard(self, stream=None):
        # Said plainly: without CLIP weights no similarity check runs at all.
        if get_scorer() is None:
            return (
                "Off: no CLIP weights are configured (PARTYHUB_CLIP_PRETRAINED), so prompts are "
                "not checked for being on topic; only the template and the word list apply."
            )
        return "On: submissions below the minimum topic similarity are refused (off_topic)."


@admin.register(Ban)
class BanAdmin(admin.ModelAdmin):
    list_display = ("user", "reason", "created_at")
    search_fields = ("user__username",)
    raw_id_fields = ("user",)
