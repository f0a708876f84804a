from django.urls import path

from streams import views

urlpatterns = [
    path("api/streams", views.stream_list),
    path("api/streams/<slug:slug>/prompts", views.submit_prompt),
    path("api/streams/<slug:slug>/images/<int:image_id>/hide", views.hide_image),
    path("s/<slug:slug>/", views.watch, name="stream"),
]
