from django.contrib import admin

from streams.models import Stream


@admin.register(Stream)
class StreamAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "topic", "model", "cadence", "active")
    list_filter = ("active",)
    prepopulated_fields = {"slug": ("title",)}
    readonly_fields = ("party", "created_at")  # the backing party is made with the stream
